"""Ctrl-C (SIGINT) and SIGTERM on the real CLI: exit 130 within seconds in any phase, print
where things stand, and the same command then finishes the job exactly once.

The scripted engine keeps these fast; tests/reliability/test_server_faults.py does the same
against a real vLLM server behind the fault proxy."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.core.helpers import REPO, write_task
from tests.support.slow_blocks import read_phases

from .crash import cli_command, cli_env, count_lines

SCRIPTED = {"class_path": "tests.support.scripted_engine:ScriptedEngine", "latency": 0.05}


def _start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, cwd=REPO, env=cli_env(), stdout=fh, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> float:
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return time.monotonic() - t0


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the run never reached the phase to interrupt"
        time.sleep(0.02)


def _finish(cmd: list[str], task_dir: Path, target: int) -> None:
    done = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    final = [json.loads(line) for line in (task_dir / "final_data.jsonl").read_text().splitlines()]
    assert len(final) == target and len({r["id"] for r in final}) == target


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_generation(tmp_path: Path, sig: signal.Signals) -> None:
    write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 400, "max_concurrent_calls": 4})
    override = tmp_path / "ov.yaml"
    override.write_text(yaml.safe_dump({"engines": SCRIPTED}))
    out = tmp_path / "out"
    cmd = cli_command(
        "--task-paths", str(tmp_path / "t"), "--config-path", str(override), "--output-dir", str(out)
    )
    proc = _start(cmd, tmp_path / "run.log")
    _wait_for(lambda: count_lines(out / "t1" / "data.jsonl") >= 20)
    elapsed = _stop(proc, sig)
    text = (tmp_path / "run.log").read_text()
    assert proc.returncode == 130, text
    assert elapsed < 5, f"took {elapsed:.1f}s to stop"
    assert "Where things stand" in text and "t1: stopped by a signal while generating" in text
    assert f"received {sig.name}" in text and "Traceback" not in text
    results = json.loads((out / "t1" / "task_results.json").read_text())
    assert results["status"] == "interrupted" and results["counts"]["accepted"] >= 20
    first = results["requests"]
    assert first >= 20 and results["tokens"]["prompt"] > 0
    _finish(cmd, out / "t1", 400)
    # the totals cover both runs: every record took a request, whichever run made it
    done = json.loads((out / "t1" / "task_results.json").read_text())
    assert done["requests"] >= 400 and done["requests"] == done["engines"]["llm1"]["requests"]
    assert done["counts"]["calls"] >= 400 and done["tokens"]["prompt"] >= 10 * done["requests"]


def test_sigterm_during_postprocessing_stops_the_pass(tmp_path: Path) -> None:
    marker = tmp_path / "phases.jsonl"
    write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 300, "max_concurrent_calls": 8})
    override = tmp_path / "ov.yaml"
    slow = {"delay": 0.015, "marker": str(marker)}  # ~4.5 s of postprocessing
    pp = {"name": "slow_pp", "class_path": "tests.support.slow_blocks:SlowPostprocessor", "init_args": slow}
    override.write_text(
        yaml.safe_dump(
            {"engines": {**SCRIPTED, "latency": 0.01}, "builders": {"echo": {"postprocessors": [pp]}}}
        )
    )
    out = tmp_path / "out"
    cmd = cli_command(
        "--task-paths", str(tmp_path / "t"), "--config-path", str(override), "--output-dir", str(out)
    )
    proc = _start(cmd, tmp_path / "run.log")
    _wait_for(lambda: any(p["pid"] == proc.pid for p in read_phases(marker)))
    time.sleep(0.5)
    elapsed = _stop(proc, signal.SIGTERM)
    text = (tmp_path / "run.log").read_text()
    assert proc.returncode == 130 and elapsed < 5, (elapsed, text)
    assert "stopped by a signal while postprocessing" in text
    state = json.loads((out / "t1" / "state.json").read_text())
    assert state["status"] == "interrupted" and state["postprocessed_upto"] == 0
    assert not (out / "t1" / "final_data.jsonl").exists()
    _finish(cmd, out / "t1", 300)


def test_interrupt_does_not_wait_for_a_blocked_plain_builder(tmp_path: Path) -> None:
    """A plain (threaded) builder stuck in a 60 s call must not keep the process alive."""
    write_task(
        tmp_path / "t",
        builder="echo_sync",
        slow_every=1,
        slow_seconds=60,
        runner_config={"num_outputs_to_generate": 10, "max_concurrent_calls": 2},
    )
    out = tmp_path / "out"
    cmd = cli_command("--task-paths", str(tmp_path / "t"), "--output-dir", str(out))
    proc = _start(cmd, tmp_path / "run.log")
    _wait_for(lambda: (out / "t1" / "task_results.json").exists())
    time.sleep(0.5)
    elapsed = _stop(proc, signal.SIGINT)
    assert proc.returncode == 130 and elapsed < 6, (elapsed, (tmp_path / "run.log").read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_tasks_load(tmp_path: Path, sig: signal.Signals) -> None:
    """A stop that arrives before the run's loop is up (here: while a builder module imports)
    still exits 130 with a message, not a traceback or a silent death by SIGTERM."""
    marker = tmp_path / "importing"
    builder = tmp_path / "builders" / "sleepy"
    builder.mkdir(parents=True)
    (builder / "sleepy.yaml").write_text("name: sleepy\n")
    (builder / "generate.py").write_text(
        f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(60)\n"
    )
    write_task(tmp_path / "t", builder="sleepy")
    cmd = cli_command(
        *("--task-paths", str(tmp_path / "t"), "--builder-paths", str(tmp_path / "builders")),
        *("--output-dir", str(tmp_path / "out")),
    )
    proc = _start(cmd, tmp_path / "log.txt")
    _wait_for(marker.exists)
    took = _stop(proc, sig)
    text = (tmp_path / "log.txt").read_text()
    assert proc.returncode == 130, text
    assert took < 5
    assert "interrupted" in text and "Traceback" not in text


@pytest.mark.vllm
@pytest.mark.slow
def test_a_second_signal_exits_at_once_without_leaving_the_engine_core(tmp_path: Path) -> None:
    """Two stops in a row (a supervisor's SIGTERM forwarded twice, Ctrl-C twice) force the
    exit, which skips the exit handlers: the in-process vLLM's engine-core process (GBs of
    memory, busy cores) must go with us, not linger as an orphan."""
    psutil = pytest.importorskip("psutil")
    task = write_task(tmp_path / "t", builder="simple", runner_config={"num_outputs_to_generate": 500})
    cmd = cli_command("--task-paths", str(task), "--output-dir", str(tmp_path / "out"))
    proc = _start(cmd, tmp_path / "log")
    me = psutil.Process(proc.pid)

    def engine_core() -> bool:
        return any(c.name().startswith("VLLM") for c in me.children(recursive=True))

    _wait_for(engine_core, timeout=300)
    children = me.children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert _stop(proc, signal.SIGTERM) < 10
    assert proc.returncode == 130
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [(p.pid, p.name()) for p in alive]
