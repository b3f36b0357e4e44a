"""SIGKILL the real CLI at random moments in every phase, resume with the same command each
time, and check the end result is exactly what an uninterrupted run would give.

Generation: 500 records from the echo builder on the scripted engine, a slow postprocessor
that drops ~1 record in 10 (so several generate/postprocess epochs happen) and a slow
formatter, killed at >= 11 moments spread over generation, postprocessing and formatting.
Transformation: 480 rows in 120 chunks; a call log proves finished chunks are never redone.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.datapoint import content_id
from fms_dgt.datastores.files import FileDatastore
from tests.core.helpers import REPO, SEEDS, write_task

from .crash import KillLog, cli_command, cli_env, kill_during

TARGET = 500
SLOW = "tests.support.slow_blocks"

# phases aimed at, in order: early kills land in the first generation epoch, the kill after
# two postprocessing kills lands in a later epoch's generation (the postprocessor drops ~10%)
PLANS = {
    "jsonl": [
        "generation",
        "generation",
        "generation",
        "generation",
        "postprocessing",
        "postprocessing",
        "generation",
        "postprocessing",
        "formatting",
        "formatting",
        "formatting",
    ],
    # the same mechanics through the parquet store's write-ahead log, fewer kills for time
    "parquet": ["generation", "generation", "generation", "postprocessing", "generation", "formatting"],
}


def _lines_ok(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` is one complete JSON object (no torn or blank lines)."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), f"{path} ends in a torn line"
    return [json.loads(line) for line in raw.decode().split("\n")[:-1]]


def _read(out: Path, store: str, fmt: str) -> list[dict[str, Any]]:
    if fmt == "jsonl":
        return _lines_ok(out / "t1" / f"{store}.jsonl")
    ds = FileDatastore(store_name=store, output_dir=out, task_name="t1", output_data_format=fmt)
    return list(ds.load_data())


def _generation_setup(tmp_path: Path, fmt: str) -> tuple[list[str], Path, Path]:
    marker = tmp_path / "phases.jsonl"
    task = write_task(
        tmp_path / "task",
        runner_config={
            "num_outputs_to_generate": TARGET,
            "max_concurrent_calls": 4,
            "save_formatted_output": True,
        },
        datastore={"output_data_format": fmt},
        filters=[{"name": "dedup", "type": "exact_dedup", "fields": ["question"]}],
        formatter={
            "class_path": f"{SLOW}:SlowFormatter",
            "init_args": {"delay": 0.002, "marker": str(marker)},
        },
    )
    override = tmp_path / "override.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "engines": {"class_path": "tests.support.scripted_engine:ScriptedEngine", "latency": 0.02},
                "builders": {
                    "echo": {
                        "postprocessors": [
                            {
                                "name": "slow_pp",
                                "class_path": f"{SLOW}:SlowPostprocessor",
                                "init_args": {"delay": 0.002, "drop_every": 10, "marker": str(marker)},
                            }
                        ]
                    }
                },
            }
        )
    )
    out = tmp_path / "out"
    cmd = cli_command("--task-paths", str(task), "--config-path", str(override), "--output-dir", str(out))
    return cmd, out, marker


def _tear(task_dir: Path, fmt: str) -> None:
    """A torn last line, as a power loss in mid-write would leave it."""
    path = task_dir / ("data.jsonl" if fmt == "jsonl" else "data.parquet/wal.jsonl")
    if path.exists():
        with open(path, "ab") as fh:
            fh.write(b'{"task_name": "t1", "question": "torn')


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_generation_survives_sigkill_in_every_phase(tmp_path: Path, fmt: str) -> None:
    cmd, out, marker = _generation_setup(tmp_path, fmt)
    task_dir = out / "t1"
    rng = random.Random(20240601)
    kills = KillLog()
    log_file = tmp_path / "runs.log"
    plan = PLANS[fmt]
    data_path = task_dir / ("data.jsonl" if fmt == "jsonl" else "data.parquet")
    for i, phase in enumerate(plan):
        outcome = kill_during(
            cmd,
            phase,
            data_file=data_path,
            marker=marker,
            rng=rng,
            max_delay=0.5 if phase == "generation" else 0.8,
            log_file=log_file,
        )
        kills.attempts.append((phase, outcome))
        if i == 1:
            _tear(task_dir, fmt)
    assert kills.kills >= len(plan) - 1, kills.attempts
    for phase in ("generation", "postprocessing", "formatting"):
        assert kills.landed(phase) >= plan.count(phase) - 1, kills.attempts

    done = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    if fmt == "jsonl":
        assert "torn last record" in log_file.read_text(errors="replace")

    final = _read(out, "final_data", fmt)
    assert len(final) == TARGET
    assert len({r["id"] for r in final}) == TARGET
    assert len({(r["question"], r["answer"]) for r in final}) == TARGET

    data = _read(out, "data", fmt)
    data_ids = {r["id"] for r in data}
    assert len(data_ids) == len(data), "a record was appended twice"
    request_idx = [r["lineage"]["request_idx"] for r in data]
    assert len(set(request_idx)) == len(request_idx), "a builder call was replayed into data"
    seed_ids = {content_id("t1", {"question": s["question"], "answer": s["answer"]}) for s in SEEDS}
    for record in final:
        assert record["id"] in data_ids
        assert record["id"] == content_id("t1", {"question": record["question"], "answer": record["answer"]})
        lineage = record["lineage"]
        assert lineage["builder"] == "echo" and isinstance(lineage["request_idx"], int)
        assert lineage["icl_ids"] and set(lineage["icl_ids"]) <= seed_ids | data_ids, lineage

    formatted = _read(out, "formatted_data", fmt)
    assert [f["source_id"] for f in formatted] == [r["id"] for r in final]
    for path in task_dir.glob("*.jsonl"):  # rejected, failed, ...: no torn lines anywhere
        _lines_ok(path) if path.stat().st_size else None
    results = json.loads((task_dir / "task_results.json").read_text())
    assert results["status"] == "complete" and results["counts"]["final"] == TARGET
    assert results["epoch"] >= 1  # the dropping postprocessor forced more than one epoch

    before = _snapshot(task_dir)
    again = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "already complete" in again.stderr
    assert _snapshot(task_dir) == before, "re-running a complete task changed its outputs"


def _snapshot(task_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(task_dir)): p.read_bytes()
        for p in sorted(task_dir.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


ROWS = 480
CHUNK = 4
TRANSFORM_PLAN = ["generation"] * 7 + ["postprocessing", "formatting", "formatting"]


def _transform_setup(tmp_path: Path, rows: int, call_seconds: float) -> tuple[list[str], Path, Path, Path]:
    """A transformation task over ``rows`` input rows with the echo_transform builder, a
    slow postprocessor and formatter; returns the command, task dir, marker and call log."""
    marker = tmp_path / "phases.jsonl"
    calls = tmp_path / "calls.jsonl"
    inputs = tmp_path / "task" / "rows.jsonl"
    inputs.parent.mkdir(parents=True)
    inputs.write_text("".join(json.dumps({"question": f"Row {i}?"}) + "\n" for i in range(rows)))
    task = tmp_path / "task" / "task.yaml"
    task.write_text(
        yaml.safe_dump(
            {
                "task_name": "tr",
                "task_description": "transformation crash test",
                "created_by": "tests",
                "data_builder": "echo_transform",
                "data": {"data_path": "rows.jsonl"},
                "calls_file": str(calls),
                "call_seconds": call_seconds,
                "runner_config": {
                    "transform_batch_size": CHUNK,
                    "max_concurrent_calls": 4,
                    "save_formatted_output": True,
                },
                "formatter": {
                    "class_path": f"{SLOW}:SlowFormatter",
                    "init_args": {"delay": 0.004, "marker": str(marker)},
                },
            }
        )
    )
    override = tmp_path / "override.yaml"
    pp = {
        "name": "slow_pp",
        "class_path": f"{SLOW}:SlowPostprocessor",
        "init_args": {"delay": 0.004, "marker": str(marker)},
    }
    override.write_text(yaml.safe_dump({"builders": {"echo_transform": {"postprocessors": [pp]}}}))
    out = tmp_path / "out"
    cmd = cli_command("--task-paths", str(task), "--config-path", str(override), "--output-dir", str(out))
    return cmd, out / "tr", marker, calls


def test_transformation_resume_never_redoes_finished_chunks(tmp_path: Path) -> None:
    cmd, task_dir, marker, calls = _transform_setup(tmp_path, ROWS, 0.05)
    rng = random.Random(7)
    kills = KillLog()
    for phase in TRANSFORM_PLAN:
        outcome = kill_during(
            cmd,
            phase,
            data_file=task_dir / "data.jsonl",
            marker=marker,
            rng=rng,
            max_delay=0.4 if phase == "generation" else 1.0,
            log_file=tmp_path / "runs.log",
        )
        kills.attempts.append((phase, outcome))
    assert kills.landed("generation") >= 5, kills.attempts
    assert kills.kills >= 8, kills.attempts

    done = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    final = _lines_ok(task_dir / "final_data.jsonl")
    assert sorted(r["question"] for r in final) == sorted(f"Row {i}?" for i in range(ROWS))
    assert len({r["id"] for r in final}) == ROWS
    progress = _lines_ok(task_dir / "transform_progress.jsonl")
    assert sorted(p["chunk"] for p in progress) == list(range(ROWS // CHUNK))

    # the run that produced a chunk's records is the last one that was ever handed that chunk
    producer = {r["lineage"]["chunk"]: r["lineage"]["pid"] for r in final}
    log = _lines_ok(calls)
    pids_in_order = list(dict.fromkeys(c["pid"] for c in log))
    for chunk, pid in producer.items():
        callers = [pids_in_order.index(c["pid"]) for c in log if c["chunk"] == chunk]
        assert max(callers) == pids_in_order.index(pid), f"chunk {chunk} was redone after it finished"
        assert callers.count(pids_in_order.index(pid)) == 1
    redone = len(log) - ROWS // CHUNK
    assert redone <= 4 * kills.landed("generation"), "more chunks redone than were in flight at the kills"
    formatted = _lines_ok(task_dir / "formatted_data.jsonl")
    assert len(formatted) == ROWS


def test_transformation_redoes_a_finished_chunk_whose_records_were_lost(tmp_path: Path) -> None:
    """After a power loss the progress line of a chunk can be on disk while its records are
    not (two files, flushed independently): the chunk must be redone, not skipped."""
    cmd, task_dir, marker, calls = _transform_setup(tmp_path, 80, 0.1)
    outcome = kill_during(
        cmd,
        "generation",
        data_file=task_dir / "data.jsonl",
        marker=marker,
        rng=random.Random(1),
        max_delay=0.6,
        log_file=tmp_path / "runs.log",
    )
    assert outcome == "killed"
    finished = {p["chunk"] for p in _lines_ok(task_dir / "transform_progress.jsonl") if p["accepted"]}
    assert finished, "no chunk finished before the kill"
    victim = min(finished)
    data = _lines_ok(task_dir / "data.jsonl")
    lost = [r for r in data if r["lineage"]["chunk"] == victim][:1]
    kept = [r for r in data if r not in lost]
    (task_dir / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    done = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "missing records on disk" in done.stderr
    final = _lines_ok(task_dir / "final_data.jsonl")
    assert sorted(r["question"] for r in final) == sorted(f"Row {i}?" for i in range(80))
    assert sum(1 for c in _lines_ok(calls) if c["chunk"] == victim) == 2
