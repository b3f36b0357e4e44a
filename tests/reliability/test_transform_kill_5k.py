"""A real transformation (``answer_questions`` on the ``openai`` engine) over 5,000 input
rows against the loopback benchmark server (``bench/stub_server.py``), SIGKILLed three times
mid-pass and resumed with the same command: every input row ends up processed exactly once.

Why this proves it, beyond counting final records: the stub's answers are unique, so a row
that was answered twice would show a different answer after the resume than before; and the
stub counts the requests it served, so the resuming runs can be held to exactly the rows that
were not done when the previous run died. The kill lands only once a verified share of the
chunks has its progress line on disk, so each kill is mid-way, never before the first record
nor after the last.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import StubProcess
from tests.core.helpers import REPO

from .crash import cli_env

ROWS = 5000
CHUNK = 8
CALLS = 16  # builder calls (chunks) in flight
CONCURRENCY = 32  # requests in flight
KILL_AT = (0.2, 0.45, 0.7)  # share of chunks done (progress lines on disk) before each kill
WAIT_SECONDS = 60.0


def _row_id(i: int) -> str:
    return f"row-{i:05d}"


def _setup(tmp_path: Path, url: str) -> tuple[list[str], Path]:
    folder = tmp_path / "task"
    folder.mkdir()
    with open(folder / "rows.jsonl", "w", encoding="utf-8") as fh:
        for i in range(ROWS):
            fh.write(json.dumps({"id": _row_id(i), "question": f"What is fact number {i}?"}) + "\n")
    task = folder / "task.yaml"
    task.write_text(
        json.dumps(
            {
                "task_name": "kill5k",
                "task_description": "5,000-row transformation killed and resumed",
                "created_by": "tests",
                "data_builder": "answer_questions",
                "data": {"data_path": "rows.jsonl"},
                "runner_config": {"transform_batch_size": CHUNK, "max_concurrent_calls": CALLS},
            }
        )
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fms_dgt.run", "--no-progress", "--task-paths", str(task)]
    cmd += ["--engine", "openai", "--base-url", url, "--model", "stub"]
    cmd += ["--max-concurrency", str(CONCURRENCY), "--output-dir", str(out)]
    return cmd, out / "kill5k"


def _complete_lines(path: Path) -> list[dict[str, Any]]:
    """The whole lines of a jsonl file (a line being written at the kill is not one yet)."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    return [json.loads(line) for line in raw.split(b"\n")[:-1] if line.strip()]


@dataclass
class Snapshot:
    """What a killed run left: answers of rows in done chunks, and the stray records of
    chunks that were in flight (to be dropped and redone)."""

    done: dict[str, str]  # input id -> answer
    stray: dict[str, str]


def _snapshot(task_dir: Path) -> Snapshot:
    progress = {p["chunk"]: p for p in _complete_lines(task_dir / "transform_progress.jsonl")}
    records = _complete_lines(task_dir / "data.jsonl")
    per_chunk: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        per_chunk.setdefault(r["lineage"]["chunk"], []).append(r)
    done: dict[str, str] = {}
    stray: dict[str, str] = {}
    for chunk, recs in per_chunk.items():
        target = done if chunk in progress else stray
        for r in recs:
            assert r["lineage"]["input_id"] not in done, f"{r['lineage']['input_id']} recorded twice"
            target[r["lineage"]["input_id"]] = r["answer"]
    for chunk, line in progress.items():  # a SIGKILL cannot lose records a progress line counts
        assert len(per_chunk.get(chunk, [])) == line["accepted"] == line["rows"], line
    return Snapshot(done, stray)


def _settled_served(stub: StubProcess) -> int:
    """Requests the stub served, once it has finished or abandoned all it had in flight."""
    deadline = time.monotonic() + 10
    stats = stub.stats()
    while stats["inflight"] and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = stub.stats()
    assert stats["inflight"] == 0, stats
    return int(stats["served"])


def _run_and_kill(cmd: list[str], task_dir: Path, chunks_done: int, rng: random.Random, log: Path) -> None:
    """Start ``cmd`` in its own process group; once ``chunks_done`` progress lines are on
    disk, wait a random moment and SIGKILL the whole group."""
    with open(log, "ab") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=cli_env(), stdout=err, stderr=err, start_new_session=True)
    progress = task_dir / "transform_progress.jsonl"
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(_complete_lines(progress)) < chunks_done:
            assert proc.poll() is None, f"the run ended before {chunks_done} chunks were done; see {log}"
            assert time.monotonic() < deadline, f"{chunks_done} chunks not done in {WAIT_SECONDS}s; see {log}"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.2))
        assert proc.poll() is None, f"the run ended before it could be killed; see {log}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert len(_complete_lines(progress)) < ROWS // CHUNK, "killed after the pass had finished"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_transformation_killed_mid_pass_processes_every_row_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(5000)
    log = tmp_path / "runs.log"
    chunks = -(-ROWS // CHUNK)
    with StubProcess(latency_mean=0.05, latency_sigma=0.5) as stub:
        cmd, task_dir = _setup(tmp_path, stub.url)
        served_before = 0
        done: dict[str, str] = {}
        strays: list[dict[str, str]] = []
        lost = 0  # requests served for chunks that the kills cut short
        for share in KILL_AT:
            _run_and_kill(cmd, task_dir, int(chunks * share), rng, log)
            served = _settled_served(stub)
            snap = _snapshot(task_dir)
            for input_id, answer in done.items():  # a row done before stays done, unchanged
                assert snap.done.get(input_id) == answer, f"{input_id} was redone after it was done"
            newly = len(snap.done) - len(done)
            # this run's requests: its newly done rows, plus at most the rows of the chunks in
            # flight at the kill (their answers were never recorded as done)
            assert newly <= served - served_before <= newly + CALLS * CHUNK, (newly, served - served_before)
            lost += served - served_before - newly
            served_before, done = served, snap.done
            strays.append(snap.stray)

        finished = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr[-3000:]
        served = _settled_served(stub)
    # the resumed run asked for exactly the rows that were not done, each once
    assert served - served_before == ROWS - len(done), (served - served_before, ROWS - len(done))

    final = _complete_lines(task_dir / "final_data.jsonl")
    assert len(final) == ROWS
    ids = [r["lineage"]["input_id"] for r in final]
    assert ids == [_row_id(i) for i in range(ROWS)], "final_data is not one record per row in input order"
    for i, r in enumerate(final):
        assert r["question"] == f"What is fact number {i}?"
    assert len({r["id"] for r in final}) == ROWS
    assert len({r["answer"] for r in final}) == ROWS
    answers = {r["lineage"]["input_id"]: r["answer"] for r in final}
    for input_id, answer in done.items():
        assert answers[input_id] == answer, f"{input_id} was redone after the last kill"
    # the kills cut chunks short mid-flight; any of their records already on disk (a chunk's
    # records are appended just before its progress line, so rarely) were dropped and redone
    assert lost > 0, "no kill landed while requests were in flight: nothing was exercised"
    for stray in strays:
        for input_id, answer in stray.items():
            assert answers[input_id] != answer, f"{input_id}: a stray record was kept"

    assert len(_complete_lines(task_dir / "data.jsonl")) == ROWS
    covered = sorted((p["start"], p["rows"]) for p in _complete_lines(task_dir / "transform_progress.jsonl"))
    assert sum(n for _, n in covered) == ROWS
    assert all(a + n == b for (a, n), (b, _) in zip(covered, covered[1:])), "a row is in two chunks"
    results = json.loads((task_dir / "task_results.json").read_text())
    assert results["status"] == "complete" and results["counts"]["final"] == ROWS
