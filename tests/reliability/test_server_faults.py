"""The real CLI against a misbehaving server: the loopback fault proxy in front of a real vLLM
server (503s, 429 + Retry-After, stalls past the timeout, dropped connections, invalid and
truncated bodies, a 10-second outage), interrupted by SIGINT and SIGTERM on the way.

The run must complete, retry with backoff, record what still failed in the failed store and
count it in the summary and task_results, stay within bounded time, and exit 130 within
seconds on a signal with a state the same command resumes from.

Two fast tests use the proxy in fake mode (no model) for outages: one the run rides out, one
that never ends (the task stops as stalled with the reason instead of spinning forever).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.run import _overrides, build_parser
from tests.core.helpers import REPO, write_task
from tests.support.fault_server import Faults, FaultServer

from .crash import cli_command, cli_env, count_lines

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the name the session vllm_server serves
FAULTS = Faults(
    p_503=0.20,
    p_429=0.05,
    p_stall=0.05,
    p_drop=0.05,
    p_invalid_json=0.03,
    p_truncated=0.03,
    retry_after=1.0,
    stall_seconds=60.0,
    seed=6,
)
# short timeouts so a stall costs seconds, few retries so the outage leaves failed records
ENGINE = {
    "type": "openai",
    "timeout": 8.0,
    "max_retries": 3,
    "backoff_base": 0.3,
    "backoff_max": 2.0,
    "max_concurrency": 8,
    "sampling": {"max_tokens": 160, "temperature": 0.8},
}


def _unique_pairs() -> Any:
    """A fake-mode responder: a different question/answer pair per request."""
    counter = itertools.count()

    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        n = next(counter)
        text = json.dumps(
            {"question": f"Why does fake event {n} happen?", "answer": f"Because of cause {n}."}
        )
        return {
            "id": f"fake-{n}",
            "object": "chat.completion",
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }

    return respond


def _table_row(stdout: str, task: str) -> dict[str, str]:
    lines = stdout.splitlines()
    header = next(line.split() for line in lines if line.startswith("task "))
    row = next(line.split() for line in lines if line.startswith(task + " "))
    return dict(zip(header, row))


def _interrupt_when(
    cmd: list[str], log: Path, ready: Any, sig: signal.Signals, timeout: float = 240.0
) -> tuple[int, float, str]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=cli_env(), stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.1)
        t0 = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        return proc.returncode, time.monotonic() - t0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_engine_flags_merge_onto_the_override_file(tmp_path: Path) -> None:
    """``--engine openai --base-url ... --model ...`` plus an override file carrying timeouts:
    flags win key by key, the file's other settings stay."""
    override = tmp_path / "ov.yaml"
    override.write_text(yaml.safe_dump({"engines": ENGINE}))
    args = build_parser().parse_args(
        ["--config-path", str(override), "--engine", "openai", "--base-url", "http://x/v1", "--model", "m"]
    )
    engine = _overrides(args).engine
    assert engine["timeout"] == 8.0 and engine["max_retries"] == 3
    assert engine["base_url"] == "http://x/v1" and engine["model"] == "m"
    args = build_parser().parse_args(["--config-path", str(override), "--engine", "vllm"])
    assert _overrides(args).engine == {"type": "vllm"}  # another engine type: the file's keys don't apply


def test_a_short_outage_is_ridden_out_not_counted_as_a_stall(tmp_path: Path) -> None:
    write_task(
        tmp_path / "t",
        runner_config={"num_outputs_to_generate": 60, "max_concurrent_calls": 4, "max_stalled_attempts": 1},
    )
    override = tmp_path / "ov.yaml"
    override.write_text(yaml.safe_dump({"engines": {**ENGINE, "timeout": 2.0, "max_retries": 1}}))
    with FaultServer(responder=_unique_pairs(), latency=0.05) as proxy:
        out = tmp_path / "out"
        cmd = cli_command(
            *("--task-paths", str(tmp_path / "t"), "--config-path", str(override), "--output-dir", str(out)),
            *("--engine", "openai", "--base-url", proxy.url, "--model", "fake"),
        )
        watcher = _outage_after(proxy, requests=10, seconds=4.0)
        r = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
        watcher.join()
        assert r.returncode == 0, r.stderr[-3000:]
        assert proxy.counts.get("outage", 0) >= 4
    results = json.loads((out / "t1" / "task_results.json").read_text())
    assert results["status"] == "complete" and results["counts"]["final"] == 60
    assert results["counts"]["failed"] >= 1  # the outage outlasted some requests' retries
    assert "LLM requests are failing" in r.stderr


def test_a_server_that_never_comes_back_stops_the_task_with_the_reason(tmp_path: Path) -> None:
    write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 5, "max_outage_seconds": 3})
    override = tmp_path / "ov.yaml"
    override.write_text(yaml.safe_dump({"engines": {**ENGINE, "max_retries": 1, "backoff_base": 0.05}}))
    with FaultServer(Faults(p_503=1.0)) as proxy:
        cmd = cli_command(
            *("--task-paths", str(tmp_path / "t"), "--config-path", str(override)),
            *("--output-dir", str(tmp_path / "out"), "--engine", "openai", "--base-url", proxy.url),
            *("--model", "fake"),
        )
        t0 = time.monotonic()
        r = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and time.monotonic() - t0 < 30, r.stderr[-2000:]
    assert "no LLM request succeeded" in r.stdout and "HTTP 503" in r.stdout
    results = json.loads((tmp_path / "out/t1/task_results.json").read_text())
    assert results["status"] == "stalled" and results["counts"]["failed"] >= 2
    assert count_lines(tmp_path / "out/t1/failed.jsonl") == results["counts"]["failed"]


def _outage_after(proxy: FaultServer, *, requests: int, seconds: float) -> threading.Thread:
    """Start a ``seconds`` outage once the proxy has seen ``requests`` more requests."""
    start = proxy.counts["requests"]

    def watch() -> None:
        deadline = time.monotonic() + 300
        while proxy.counts["requests"] < start + requests and time.monotonic() < deadline:
            time.sleep(0.05)
        proxy.schedule_outage(start_in=0.0, duration=seconds)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


REAL_ENGINE = {
    **ENGINE,
    # CPU inference on a shared 2-core machine: a few tokens per answer, generous timeout
    "timeout": 45.0,
    "max_concurrency": 4,
    "sampling": {"max_tokens": 12, "temperature": 0.8},
}


@pytest.mark.vllm
@pytest.mark.slow
def test_real_server_behind_faults_with_signals(vllm_server: str, tmp_path: Path) -> None:
    target = 12
    out = tmp_path / "out"
    task_dir = out / "t1"
    write_task(
        tmp_path / "t",
        builder="short_answers",
        runner_config={"num_outputs_to_generate": target, "max_concurrent_calls": 4},
    )
    override = tmp_path / "ov.yaml"
    override.write_text(yaml.safe_dump({"engines": REAL_ENGINE}))
    faults = dataclasses.replace(FAULTS, stall_seconds=120.0)
    with FaultServer(faults, upstream=vllm_server) as proxy:
        cmd = cli_command(
            *("--task-paths", str(tmp_path / "t"), "--output-dir", str(out), "--config-path", str(override)),
            *("--engine", "openai", "--base-url", proxy.url, "--model", MODEL),
        )
        # 1. Ctrl-C once this run has added a record, 2. SIGTERM once the next run has added
        # two more (counted from what is on disk when it starts: the first run's records
        # alone must not fire the signal before the second run is even up)
        for sig, more in ((signal.SIGINT, 1), (signal.SIGTERM, 2)):
            before = count_lines(task_dir / "data.jsonl")
            code, took, text = _interrupt_when(
                cmd,
                tmp_path / f"{sig.name}.log",
                lambda n=before + more: count_lines(task_dir / "data.jsonl") >= n,
                sig,
            )
            assert code == 130, text[-3000:]
            assert took < 5, f"{sig.name}: {took:.1f}s to stop"
            assert "Where things stand" in text and "stopped by a signal" in text and "Traceback" not in text
        # 3. the same command finishes the job, through a 10-second outage; its first
        # requests meet each fault kind once for sure (the random draws of a 12-record run
        # may miss the rarer ones)
        proxy.push_script("429", "drop", "invalid_json", "truncated", "stall")
        watcher = _outage_after(proxy, requests=4, seconds=10.0)
        t0 = time.monotonic()
        done = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=400)
        elapsed = time.monotonic() - t0
        watcher.join(timeout=5)
        counts = proxy.counts
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed < 300, f"the resumed run took {elapsed:.0f}s"
    assert counts.get("outage", 0) >= 1 and counts.get("503", 0) >= 1, counts
    assert all(counts.get(f, 0) >= 1 for f in ("429", "stall", "drop", "invalid_json", "truncated")), counts

    final = [json.loads(line) for line in (task_dir / "final_data.jsonl").read_text().splitlines()]
    assert len(final) == target and len({r["id"] for r in final}) == target
    assert len({r["question"] for r in final}) == target
    assert all(r["lineage"]["model"] == MODEL and r["answer"] for r in final)
    results = json.loads((task_dir / "task_results.json").read_text())
    assert results["status"] == "complete"
    assert results["engines"]["llm1"]["retries"] >= 1, results["engines"]
    failed = [json.loads(line) for line in (task_dir / "failed.jsonl").read_text().splitlines()]
    assert failed and results["counts"]["failed"] == len(failed)
    # every transport retry was used (parse retries, if any, come on top)
    assert all(f["attempts"] >= REAL_ENGINE["max_retries"] + 1 for f in failed if f["stage"] == "engine")
    assert any("HTTP 503" in f["error"] for f in failed)
    row = _table_row(done.stdout, "t1")
    assert row["status"] == "complete" and int(row["failed"]) == len(failed)
