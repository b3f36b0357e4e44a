"""A run that uses the Batch API, killed with SIGKILL and started again, pays once: the
restarted run finds its journal in the task's output folder and waits for the jobs the
first run created, even when it was killed after creating a job but before hearing its id.

The real CLI runs the ``inference`` builder over 12 rows against the loopback batch server
(in this process, so it outlives the killed run and counts the jobs created)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.core.helpers import REPO, read_jsonl
from tests.reliability.crash import cli_command, cli_env
from tests.support.batch_server import BatchServer
from tests.support.fault_server import canned_response

ROWS = 12


def echo(url: str, body: dict[str, Any]) -> dict[str, Any]:
    text = body["messages"][-1]["content"]
    return canned_response(url, body, text=f"summary of <{text}>")


def _write(tmp_path: Path, url: str) -> list[str]:
    task = {
        "task_name": "batch_resume",
        "task_description": "inference through the Batch API",
        "created_by": "tests",
        "data_builder": "inference",
        "prompt_template": "Summarise: {{ text }}",
        "output_field": "summary",
        "data": [{"id": f"r{i}", "text": f"row number {i}"} for i in range(ROWS)],
    }
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    engine = {
        "type": "openai",
        "model": "fake",
        "base_url": url,
        "api_key": "sk-test",
        "batch": {"collect_seconds": 0.5, "poll_seconds": 0.1},
    }
    (tmp_path / "override.yaml").write_text(yaml.safe_dump({"engines": engine}))
    out = tmp_path / "out"
    return [
        "--task-paths",
        str(tmp_path / "task"),
        "--config-path",
        str(tmp_path / "override.yaml"),
        "--output-dir",
        str(out),
    ]


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cli_command(*args), cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _wait(condition: Any, proc: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"the run ended early ({proc.returncode}):\n{err.decode()[-3000:]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _finish(args: list[str], srv: BatchServer) -> Path:
    srv.create_delay = 0.0
    srv.release()
    second = _start(args)
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err.decode()[-3000:]
    return Path(args[args.index("--output-dir") + 1]) / "batch_resume"


@pytest.mark.parametrize("moment", ["job created", "while creating"])
def test_a_killed_batch_run_resumes_its_jobs(tmp_path: Path, moment: str) -> None:
    create_delay = 60.0 if moment == "while creating" else 0.0
    with BatchServer(responder=echo, create_delay=create_delay) as srv:
        srv.hold()
        args = _write(tmp_path, srv.url)
        first = _start(args)
        try:
            _wait(lambda: srv.created == 1, first)
            if moment == "job created":  # the id is journaled right after the server answers
                journal_dir = tmp_path / "out" / "batch_resume" / "batch_jobs"
                _wait(lambda: any("created" in p.read_text() for p in journal_dir.glob("*.jsonl")), first)
        finally:
            _kill(first)
        assert len(srv.jobs[0].lines) == ROWS
        journal = next((tmp_path / "out" / "batch_resume" / "batch_jobs").glob("*.jsonl"))
        ops = [json.loads(line)["op"] for line in journal.read_text().splitlines()]
        assert ops == (["intent", "created"] if moment == "job created" else ["intent"])

        task_dir = _finish(args, srv)
        assert srv.created == 1, [len(j.lines) for j in srv.jobs]  # nothing submitted twice
        assert srv.uploads == 1
        records = read_jsonl(task_dir / "final_data.jsonl")
        assert sorted(r["row"]["id"] for r in records) == sorted(f"r{i}" for i in range(ROWS))
        for r in records:
            assert r["summary"] == f"summary of <Summarise: {r['row']['text']}>"
        results = json.loads((task_dir / "task_results.json").read_text())
        assert results["status"] == "complete"


def test_restart_starts_the_batch_jobs_over(tmp_path: Path) -> None:
    """``--restart`` removes the task folder, journal included: its requests are new jobs."""
    with BatchServer(responder=echo) as srv:
        args = _write(tmp_path, srv.url)
        first = _start(args)
        _, err = first.communicate(timeout=180)
        assert first.returncode == 0, err.decode()[-3000:]
        assert srv.created == 1
        again = _start([*args, "--restart"])
        _, err = again.communicate(timeout=180)
        assert again.returncode == 0, err.decode()[-3000:]
        assert srv.created == 2
