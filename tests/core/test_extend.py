"""A finished task can be asked for more: a higher target generates only the missing
records, new input rows are processed on their own. Small targets do not overshoot, and
a transformation's final_data keeps the input order."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .helpers import read_jsonl, results, run_cli, write_task


def test_a_higher_target_generates_only_the_missing_records(tmp_path: Path) -> None:
    task = write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 20})
    out = tmp_path / "out"
    assert run_cli("--task-paths", str(task), "--output-dir", str(out)).returncode == 0
    first = read_jsonl(out / "t1/final_data.jsonl")
    calls_before = results(out)["counts"]["calls"]
    r = run_cli("--task-paths", str(task), "--output-dir", str(out), "--num-outputs-to-generate", "35")
    assert r.returncode == 0, r.stderr
    assert "extending from 20 to 35 records" in r.stderr and "already complete" not in r.stderr
    final = read_jsonl(out / "t1/final_data.jsonl")
    assert len(final) == 35 and len({x["id"] for x in final}) == 35
    assert final[:20] == first  # what was made is kept, in order
    res = results(out)
    assert res["status"] == "complete" and res["counts"]["final"] == 35
    assert res["counts"]["calls"] - calls_before <= 15 * 2  # the missing 15 (with headroom), not 35 again
    # the same target again: nothing to do
    again = run_cli("--task-paths", str(task), "--output-dir", str(out), "--num-outputs-to-generate", "35")
    assert "already complete" in again.stderr


def test_a_small_target_does_not_overshoot(tmp_path: Path) -> None:
    task = write_task(
        tmp_path / "t", runner_config={"num_outputs_to_generate": 5, "max_concurrent_calls": 32}
    )
    out = tmp_path / "out"
    assert run_cli("--task-paths", str(task), "--output-dir", str(out)).returncode == 0
    res = results(out)
    assert res["counts"]["final"] == 5
    assert res["counts"]["calls"] <= 10, res["counts"]  # not 32 calls for 5 records
    assert res["counts"]["accepted"] <= 10


def _transform_task(folder: Path, rows: int, calls: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.jsonl").write_text(
        "".join(json.dumps({"question": f"Row {i}?", "source": f"s{i}"}) + "\n" for i in range(rows))
    )
    data = {
        "task_name": "tr",
        "task_description": "t",
        "created_by": "tests",
        "data_builder": "echo_transform",
        "data": {"data_path": "rows.jsonl"},
        "calls_file": str(calls),
        "call_seconds": 0.01,
        "runner_config": {"transform_batch_size": 4, "max_concurrent_calls": 8},
    }
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_new_input_rows_are_processed_on_their_own_and_final_data_keeps_input_order(tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    task = _transform_task(tmp_path / "t", 30, calls)
    out = tmp_path / "out"
    first = run_cli("--task-paths", str(task), "--output-dir", str(out))
    assert first.returncode == 0, first.stderr
    # an input column the record type does not have is named once, not dropped silently
    assert first.stderr.count("input record key 'source' is not a field of Row and is ignored") == 1
    final = read_jsonl(out / "tr/final_data.jsonl")
    assert [r["question"] for r in final] == [f"Row {i}?" for i in range(30)]  # input order
    rows_seen = sum(json.loads(line)["rows"] for line in calls.read_text().splitlines())
    assert rows_seen == 30
    # ten more rows at the end of the input
    with open(tmp_path / "t/rows.jsonl", "a") as fh:
        fh.write("".join(json.dumps({"question": f"Row {i}?"}) + "\n" for i in range(30, 40)))
    second = run_cli("--task-paths", str(task), "--output-dir", str(out))
    assert second.returncode == 0, second.stderr
    assert "processing only those" in second.stderr
    final = read_jsonl(out / "tr/final_data.jsonl")
    assert [r["question"] for r in final] == [f"Row {i}?" for i in range(40)]
    rows_seen = sum(json.loads(line)["rows"] for line in calls.read_text().splitlines())
    assert rows_seen == 40  # each row handed to the builder once
    third = run_cli("--task-paths", str(task), "--output-dir", str(out))
    assert "already complete" in third.stderr
