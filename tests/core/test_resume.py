"""SIGKILL mid-run, resume with the same command: exactly-once output."""

import signal
import subprocess
import sys
import time

import yaml

from tests.reliability.crash import count_lines

from .helpers import FIXTURE_BUILDERS, REPO, read_jsonl, write_task


def _scripted_run(tmp_path, target: int, latency: float) -> list[str]:
    """A task of ``target`` records on the scripted engine; the CLI command that runs it."""
    write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": target, "max_concurrent_calls": 4})
    over = tmp_path / "ov.yaml"
    engine = {"class_path": "tests.support.scripted_engine:ScriptedEngine", "latency": latency}
    over.write_text(yaml.safe_dump({"engines": engine}))
    return [
        *(sys.executable, "-m", "fms_dgt.run", "--no-progress", "--task-paths", str(tmp_path / "t")),
        *("--builder-paths", str(FIXTURE_BUILDERS), "--config-path", str(over)),
        *("--output-dir", str(tmp_path / "out")),
    ]


def test_sigkill_then_resume_exactly_once(tmp_path):
    cmd = _scripted_run(tmp_path, 300, 0.03)
    data = tmp_path / "out/t1/data.jsonl"
    kills = 0
    # kill on progress, not on a clock: each run is killed once it has added some records of
    # its own (a fixed delay either fires before the run is up on a loaded machine or after
    # it has finished on a fast one)
    for more, extra_delay in ((20, 0.0), (35, 0.05), (50, 0.13)):
        before = count_lines(data)
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while proc.poll() is None and count_lines(data) < before + more and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(extra_delay)
        if proc.poll() is None and count_lines(data) < 300:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate()
    assert kills >= 2
    assert data.exists()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    final = read_jsonl(tmp_path / "out/t1/final_data.jsonl")
    assert len(final) == 300
    assert len({r["id"] for r in final}) == 300
    assert len({r["question"] for r in final}) == 300
    raw = read_jsonl(data)  # also proves there is no torn line left
    idx = [r["lineage"]["request_idx"] for r in raw]
    assert len(idx) == len(set(idx))  # no call was replayed into data twice


def test_a_killed_runs_requests_stay_counted(tmp_path):
    """task_results is refreshed at every checkpoint, so requests and tokens a run spent are
    in the totals even when it is SIGKILLed (and the resumed run adds to them)."""
    import json

    cmd = _scripted_run(tmp_path, 120, 0.1)
    results = tmp_path / "out/t1/task_results.json"
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for a checkpoint that counted some requests
        time.sleep(0.2)
        try:
            seen = json.loads(results.read_text()).get("requests", 0)
        except (FileNotFoundError, json.JSONDecodeError):
            seen = 0
        if seen >= 10 or proc.poll() is not None:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = json.loads(results.read_text())
    assert killed["status"] == "running" and killed["requests"] >= 10
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    final = json.loads(results.read_text())
    # the resumed run adds its own to what the killed one had counted at its last checkpoint
    assert final["status"] == "complete" and final["requests"] > killed["requests"]
