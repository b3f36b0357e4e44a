"""Transformation input and seeds from every kind of source: files, globs, folders, CSV in
chunks, and a Hugging Face dataset saved with ``save_to_disk`` (a real ``datasets``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fms_dgt.datastores.readers import CSV_CHUNK_ROWS, expand_paths, format_of, read_located_records
from fms_dgt.errors import ConfigError

from .helpers import read_jsonl, run_cli


def _transform(folder: Path, data: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "task.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "task_name": "tr",
                "task_description": "t",
                "created_by": "tests",
                "data_builder": "echo_transform",
                "data": data,
                "runner_config": {"transform_batch_size": 7},
            }
        )
    )
    return path


def test_a_saved_dataset_is_transformation_input(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = {"question": [f"Row {i}?" for i in range(25)], "other": list(range(25))}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "t" / "ds"))
    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"question": ["A?", "B?"]}),
            "test": datasets.Dataset.from_dict({"question": ["C?"]}),
        }
    )
    splits.save_to_disk(str(tmp_path / "t" / "dd"))
    assert format_of(tmp_path / "t" / "ds") == "datasets" and format_of(tmp_path / "t" / "dd") == "datasets"
    task = _transform(tmp_path / "t", {"data_path": ["ds", "dd"]})
    r = run_cli("--task-paths", str(task), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    final = read_jsonl(tmp_path / "out/tr/final_data.jsonl")
    assert [x["question"] for x in final] == [f"Row {i}?" for i in range(25)] + ["A?", "B?", "C?"]


def test_a_folder_is_the_record_files_in_it(tmp_path: Path) -> None:
    folder = tmp_path / "t" / "rows"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jsonl").write_text(json.dumps({"question": "A?"}) + "\n")
    pd.DataFrame({"question": ["B?", "C?"]}).to_parquet(folder / "sub" / "b.parquet")
    (folder / "notes.txt").write_text("not records")
    assert [p.name for p in expand_paths("rows", tmp_path / "t")] == ["a.jsonl", "b.parquet"]
    task = _transform(tmp_path / "t", {"data_path": "rows"})
    r = run_cli("--task-paths", str(task), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert [x["question"] for x in read_jsonl(tmp_path / "out/tr/final_data.jsonl")] == ["A?", "B?", "C?"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no record files"):
        expand_paths("empty", tmp_path)


def test_csv_is_read_in_chunks_with_line_numbers(tmp_path: Path) -> None:
    n = CSV_CHUNK_ROWS * 2 + 5
    path = tmp_path / "rows.csv"
    pd.DataFrame({"question": [f"q{i}" for i in range(n)]}).to_csv(path, index=False)
    rows = list(read_located_records(path))
    assert (
        len(rows) == n
        and rows[0] == (2, {"question": "q0"})
        and rows[-1] == (n + 1, {"question": f"q{n - 1}"})
    )


def test_columns_map_differently_named_data_and_a_missing_one_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "rows.jsonl").write_text(
        "".join(json.dumps({"prompt": f"P{i}?", "id_src": i}) + "\n" for i in range(4))
    )
    r = run_cli("--task-paths", str(_transform(folder, {"data_path": "rows.jsonl"})), "--validate")
    assert r.returncode == 2
    assert "input record 0 is missing question" in r.stderr and "columns: {question: <column>}" in r.stderr
    assert "this row has prompt, id_src" in r.stderr
    task = _transform(folder, {"data_path": "rows.jsonl", "columns": {"question": "prompt"}})
    r = run_cli("--task-paths", str(task), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert [x["question"] for x in read_jsonl(tmp_path / "out/tr/final_data.jsonl")] == [
        "P0?",
        "P1?",
        "P2?",
        "P3?",
    ]
