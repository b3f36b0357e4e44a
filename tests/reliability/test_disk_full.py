"""A full disk is a message, not a traceback, and nothing accepted is lost: after space
is freed, the same command finishes the task to its exact target with no duplicates.
Tested on a real small filesystem (a tmpfs mounted for the test, then grown)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.helpers import read_jsonl, run_cli, write_task

TARGET = 3000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_a_message_and_the_same_command_finishes(tmp_path: Path, small_disk: Path) -> None:
    task = write_task(
        tmp_path / "t", runner_config={"num_outputs_to_generate": TARGET, "max_concurrent_calls": 8}
    )
    out = small_disk / "out"
    args = ("--task-paths", str(task), "--output-dir", str(out))
    first = run_cli(*args)
    assert first.returncode == 1, first.stderr[-2000:]
    assert "Traceback" not in first.stderr + first.stdout
    assert "the disk is full: could not write" in first.stderr
    assert "run the same command again" in first.stderr
    data = out / "t1" / "data.jsonl"
    kept = [line for line in data.read_bytes().split(b"\n") if line.endswith(b"}")] if data.exists() else []
    assert 0 < len(kept) < TARGET, "the disk should fill in the middle of the run"  # (a torn tail may follow)
    # free space: grow the filesystem, then the same command
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr[-2000:]
    final = read_jsonl(out / "t1" / "final_data.jsonl")
    assert len(final) == TARGET
    assert len({r["id"] for r in final}) == TARGET and len({r["question"] for r in final}) == TARGET
    results = json.loads((out / "t1" / "task_results.json").read_text())
    assert results["status"] == "complete" and results["counts"]["final"] == TARGET


def test_damaged_state_is_rebuilt_from_the_stores(tmp_path: Path) -> None:
    task = write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 40})
    out = tmp_path / "out"
    args = ("--task-paths", str(task), "--output-dir", str(out))
    assert run_cli(*args).returncode == 0
    state = out / "t1" / "state.json"
    state.write_text(state.read_text()[:25])  # cut short by hand
    # a higher target: the run must continue from what is on disk, not start over
    r = run_cli(*args, "--num-outputs-to-generate", "60")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "state.json is damaged" in r.stderr and "--restart" in r.stderr
    assert (out / "t1" / "state.json.damaged").exists()
    final = read_jsonl(out / "t1" / "final_data.jsonl")
    assert len(final) == 60 and len({r["id"] for r in final}) == 60
    data = read_jsonl(out / "t1" / "data.jsonl")
    assert len(data) >= 60 and len({r["id"] for r in data}) == len(data)
