"""Hierarchical task names, as the task.yaml format documents them: ``a/b/c`` writes to
nested folders, resumes, locks and reports under its full name; escapes and nested task
folders are refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from fms_dgt.report import main as report_main

from .helpers import REPO, read_jsonl, run_cli, write_task

NAME = "core/simple/reasoning/causal"


def test_a_hierarchical_name_runs_resumes_and_reports_under_its_full_name(tmp_path: Path, capsys) -> None:
    task = write_task(tmp_path / "t", name=NAME, runner_config={"num_outputs_to_generate": 12})
    out = tmp_path / "out"
    first = run_cli("--task-paths", str(task), "--output-dir", str(out))
    assert first.returncode == 0, first.stderr
    folder = out / "core" / "simple" / "reasoning" / "causal"
    assert len(read_jsonl(folder / "final_data.jsonl")) == 12
    results = json.loads((folder / "task_results.json").read_text())
    assert results["task_name"] == NAME
    assert (
        NAME in first.stdout and f"outputs: {folder}/" in first.stdout
    )  # the summary: full name, real folder
    again = run_cli("--task-paths", str(task), "--output-dir", str(out))
    assert again.returncode == 0 and "already complete" in again.stderr
    assert report_main([str(out)]) == 0
    assert f"== {NAME} (complete)" in capsys.readouterr().out
    assert report_main([str(out), "--task", NAME]) == 0
    assert report_main([str(folder)]) == 0  # one task's folder
    listing = run_cli("--list", "--task-paths", str(task))
    assert NAME in listing.stdout


def test_the_lock_names_the_full_task_name(tmp_path: Path) -> None:
    task = write_task(
        tmp_path / "t",
        name=NAME,
        runner_config={"num_outputs_to_generate": 100000, "max_concurrent_calls": 1},
        slow_every=1,
        slow_seconds=0.5,
    )
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "fms_dgt.run",
        "--no-progress",
        "--task-paths",
        str(task),
        "--output-dir",
        str(out),
    ]
    cmd += ["--builder-paths", str(REPO / "tests/fixtures/builders")]
    holder = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = out / NAME / ".lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        second = run_cli("--task-paths", str(task), "--output-dir", str(out))
        assert second.returncode == 1
        assert f"task '{NAME}' is already being run by pid {holder.pid}" in second.stderr
    finally:
        holder.terminate()
        holder.wait(timeout=60)


def test_task_folders_may_not_nest(tmp_path: Path) -> None:
    outer = write_task(tmp_path / "a", name="a/b")
    inner = write_task(tmp_path / "b", name="a/b/c")
    out = tmp_path / "out"
    together = run_cli("--task-paths", str(outer), str(inner), "--output-dir", str(out), "--validate")
    assert together.returncode == 2
    assert "task 'a/b/c' would write inside the output folder of task 'a/b'" in together.stderr
    # one after the other, in the same output folder: the disk is checked too
    assert run_cli("--task-paths", str(outer), "--output-dir", str(out)).returncode == 0
    later = run_cli("--task-paths", str(inner), "--output-dir", str(out))
    assert later.returncode == 2 and "inside the output folder of task 'a/b'" in later.stderr
    other = tmp_path / "out2"
    assert run_cli("--task-paths", str(inner), "--output-dir", str(other)).returncode == 0
    earlier = run_cli("--task-paths", str(outer), "--output-dir", str(other))
    assert earlier.returncode == 2 and "holds the output of another task" in earlier.stderr
    assert "Traceback" not in together.stderr + later.stderr + earlier.stderr
