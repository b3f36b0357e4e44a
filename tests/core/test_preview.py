"""``--preview N``: N records through the whole pipeline, printed with their rejections and
an estimate for the full task; nothing written to the task's output folder; with the
response cache on, the real run afterwards reuses the preview's answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.fault_server import FaultServer, canned_response

from .helpers import results, run_cli, write_task


def _estimate(stdout: str) -> dict[str, float]:
    found = re.search(r"estimate for all (\d+) [\w ]+?: ~(\d+) requests, ~(\d+) tokens", stdout)
    assert found, stdout
    return {"size": int(found[1]), "requests": int(found[2]), "tokens": int(found[3])}


def test_a_preview_prints_records_and_an_estimate_and_writes_nothing(tmp_path: Path) -> None:
    task = write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 60})
    out = tmp_path / "out"
    r = run_cli("--task-paths", str(task), "--output-dir", str(out), "--preview", "4")
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r"^  \[\d\] ", r.stdout, re.M)) == 4
    assert "nothing was written" in r.stdout
    assert not (out / "t1").exists()  # not even the task's folder
    estimate = _estimate(r.stdout)
    r = run_cli("--task-paths", str(task), "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    real = results(out)
    assert estimate["size"] == 60
    assert abs(estimate["requests"] - real["requests"]) <= 0.2 * real["requests"], (estimate, real)
    total = real["tokens"]["prompt"] + real["tokens"]["completion"]
    assert abs(estimate["tokens"] - total) <= 0.2 * total


def test_a_preview_shows_every_rejection_and_failure_with_its_reason(tmp_path: Path) -> None:
    """The simple builder against a server that repeats one question (rejected as a
    duplicate) and sometimes answers outside the schema (a failed request)."""
    served = iter(range(10**6))

    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        n = next(served)
        question = {0: f"Tell me about tide {n}", 1: "Why does the tide turn?"}.get(
            n % 3, f"Why does tide {n} turn?"
        )
        pair = {"question": question, "answer": f"The Moon pulls tide {n} back."}
        return canned_response(path, {**body, "response_format": None}, text=json.dumps(pair))

    rc = {"num_outputs_to_generate": 50, "max_concurrent_calls": 4}
    task = write_task(tmp_path / "t", builder="simple", runner_config=rc)
    with FaultServer(responder=respond) as srv:
        args = ["--task-paths", str(task), "--output-dir", str(tmp_path / "out"), "--preview", "4"]
        r = run_cli(*args, "--engine", "openai", "--base-url", srv.url, "--model", "fake", builders=False)
    assert r.returncode == 0, r.stderr
    rejections = re.findall(r"^  rejected by (\S+): (.+)\n +(.+)$", r.stdout, re.M)
    assert rejections, r.stdout
    assert all(reason and "Why does the tide turn?" in shown for _, reason, shown in rejections)


def test_a_preview_that_keeps_nothing_shows_the_failures_and_exits_1(tmp_path: Path) -> None:
    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        pair = {"question": "Tell me about tides", "answer": "The Moon pulls them."}  # not a question
        return canned_response(path, {**body, "response_format": None}, text=json.dumps(pair))

    rc = {"num_outputs_to_generate": 50, "max_concurrent_calls": 2, "max_stalled_attempts": 1}
    task = write_task(tmp_path / "t", builder="simple", runner_config=rc)
    with FaultServer(responder=respond) as srv:
        args = ["--task-paths", str(task), "--output-dir", str(tmp_path / "out"), "--preview", "2"]
        r = run_cli(*args, "--engine", "openai", "--base-url", srv.url, "--model", "fake", builders=False)
    assert r.returncode == 1, r.stdout
    assert "no record was kept" in r.stdout and "nothing was kept" in r.stdout
    assert re.search(r"^  failed \(llm1\): invalid structured output", r.stdout, re.M), r.stdout


def test_the_real_run_reuses_the_preview_answers_from_the_cache(tmp_path: Path) -> None:
    rc = {"num_outputs_to_generate": 8, "machine_batch_size": 0, "seed": 3, "max_concurrent_calls": 1}
    task = write_task(tmp_path / "t", builder="simple", runner_config=rc)
    served = iter(range(10**6))

    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        n = next(served)
        pair = {"question": f"Why does tide {n} turn?", "answer": f"The Moon pulls tide {n} back."}
        return canned_response(path, {**body, "response_format": None}, text=json.dumps(pair))

    with FaultServer(responder=respond) as srv:
        override = tmp_path / "o.yaml"
        engine = {"type": "openai", "model": "fake", "base_url": srv.url, "cache": str(tmp_path / "c.sqlite")}
        override.write_text(yaml.safe_dump({"engines": engine}))
        args = [
            "--task-paths",
            str(task),
            "--config-path",
            str(override),
            "--output-dir",
            str(tmp_path / "out"),
        ]
        assert run_cli(*args, "--preview", "3", builders=False).returncode == 0
        after_preview = srv.counts["requests"]
        assert after_preview >= 3
        r = run_cli(*args, builders=False)
        assert r.returncode == 0, r.stderr
        sent = srv.counts["requests"] - after_preview
    cached = results(tmp_path / "out")["engines"]["llm1"]["cached"]
    assert cached >= 3 and sent <= results(tmp_path / "out")["engines"]["llm1"]["requests"]
    assert sent + cached >= 8 and sent <= 8 - 3 + 2  # at least the preview's 3 fewer (+ headroom)


def test_a_preview_of_a_transformation_processes_its_first_rows(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "rows.jsonl").write_text(
        "".join(json.dumps({"question": f"Row {i}?"}) + "\n" for i in range(30))
    )
    task = folder / "task.yaml"
    spec = {
        "task_name": "tr",
        "task_description": "t",
        "created_by": "tests",
        "data_builder": "inference",
        "input_field": "question",
        "data": {"data_path": "rows.jsonl"},
    }
    task.write_text(yaml.safe_dump(spec))
    with FaultServer() as srv:
        args = ["--task-paths", str(task), "--output-dir", str(tmp_path / "out"), "--preview", "5"]
        r = run_cli(*args, "--engine", "openai", "--base-url", srv.url, "--model", "fake", builders=False)
        assert srv.counts["requests"] == 5
    assert r.returncode == 0, r.stderr
    assert re.findall(r"^  \[\d\] .*Row (\d)\?", r.stdout, re.M) == ["0", "1", "2", "3", "4"]
    assert _estimate(r.stdout) == {"size": 30, "requests": 30, "tokens": _estimate(r.stdout)["tokens"]}
    assert not (tmp_path / "out" / "tr").exists()


def test_a_preview_of_zero_is_refused(tmp_path: Path) -> None:
    task = write_task(tmp_path / "t")
    r = run_cli("--task-paths", str(task), "--output-dir", str(tmp_path / "o"), "--preview", "0")
    assert r.returncode == 2 and "--preview" in r.stderr, r.stderr
