"""Fine-tuning formatters (input_output, extractive_qa), formatter rejections, and the
seeded train/validation/test split: exact ratios, disjoint, stable on resume and extension."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import fms_dgt.formatters  # noqa: F401  (registers the built-ins)
from fms_dgt.export.splits import assign, quotas
from fms_dgt.formatters.base import FormatRejected
from fms_dgt.registry import formatters
from tests.core.helpers import read_jsonl, run_cli, write_task

RATIOS = {"train": 0.9, "validation": 0.05, "test": 0.05}


def test_input_output_formatter() -> None:
    fmt = formatters.get("input_output")(input="Summarize: {{ question }}", task="summarization")
    assert fmt.format({"question": "a long text", "answer": "short"}) == {
        "input": "Summarize: a long text",
        "output": "short",
    }
    assert fmt.training_task == "summarization"
    assert formatters.get("input_output")().training_task == "text-generation"
    with pytest.raises(FormatRejected, match="empty output"):
        fmt.format({"question": "q", "answer": "  "})


def test_extractive_qa_formatter_finds_span_or_rejects() -> None:
    fmt = formatters.get("extractive_qa")()
    record = {
        "context": "Water boils at 100 degrees at sea level.",
        "question": "When?",
        "answer": " 100 degrees ",
    }
    row = fmt.format(record)
    assert row == {
        "context": record["context"],
        "question": "When?",
        "answer": "100 degrees",
        "answer_start": 15,
    }
    assert row["context"][row["answer_start"] :].startswith(row["answer"])
    with pytest.raises(FormatRejected, match="answer not found verbatim in the context"):
        fmt.format({**record, "answer": "212 Fahrenheit"})
    with pytest.raises(FormatRejected, match="answer not found"):
        fmt.format({**record, "answer": "WATER"})
    loose = formatters.get("squad")(ignore_case=True)
    assert loose.format({**record, "answer": "WATER"})["answer"] == "Water"
    assert fmt.training_task == "extractive-question-answering"


def test_format_all_hands_rejections_to_the_hook() -> None:
    fmt = formatters.get("extractive_qa")()
    records = [
        {"id": "a", "context": "The sky is blue.", "question": "Colour?", "answer": "blue"},
        {"id": "b", "context": "The sky is blue.", "question": "Colour?", "answer": "green"},
    ]
    seen: list[tuple[str, str]] = []
    assert [r["answer"] for r in fmt.format_all(records)] == ["blue"]  # no hook: left out
    fmt.on_reject = lambda r, why: seen.append((r["id"], why))
    out = list(fmt.format_all(records))
    assert [r["answer"] for r in out] == ["blue"]
    assert seen == [("b", "answer not found verbatim in the context: 'green'")]


def test_quotas_are_within_one_row() -> None:
    for n in range(0, 300):
        q = quotas(n, RATIOS)
        assert sum(q.values()) == n
        assert all(abs(q[s] - RATIOS[s] * n) < 1 for s in q)


def test_assignment_stable_when_extended_and_exact() -> None:
    first = assign([f"r{i}" for i in range(101)], RATIOS, seed=7)
    assert Counter(first.values()) == Counter(quotas(101, RATIOS))
    again = assign(reversed(list(first)), RATIOS, seed=7)  # order does not matter
    assert again == first
    more = assign([f"r{i}" for i in range(437)], RATIOS, seed=7, previous=first)
    assert all(more[k] == v for k, v in first.items())  # nothing moved
    assert Counter(more.values()) == Counter(quotas(437, RATIOS))
    other_seed = assign(list(first), RATIOS, seed=8)
    assert other_seed != first
    # records that left (a stricter postprocessor) shrink the quotas: exact again
    fewer = assign([f"r{i}" for i in range(0, 101, 2)], RATIOS, seed=7, previous=more)
    assert Counter(fewer.values()) == Counter(quotas(51, RATIOS))


def _split_task(tmp: Path, n: int, **extra: Any) -> Path:
    return write_task(
        tmp / "tasks",
        runner_config={
            "num_outputs_to_generate": n,
            "save_formatted_output": True,
            "split": {"train": 0.8, "validation": 0.1, "test": 0.1, "seed": 7},
        },
        # ids ending in a digit keep their answer in the context, the others are rejected
        formatter={
            "type": "extractive_qa",
            "context": "{{ question }} {{ answer if id[-1] in '0123456789' else '' }}",
        },
        **extra,
    )


def _splits(task_dir: Path, base: str) -> dict[str, list[dict[str, Any]]]:
    return {s: read_jsonl(task_dir / f"{base}_{s}.jsonl") for s in ("train", "validation", "test")}


def test_split_files_through_the_cli(tmp_path: Path) -> None:
    _split_task(tmp_path, 23)
    out = tmp_path / "out"
    args = ("--task-paths", str(tmp_path / "tasks"), "--output-dir", str(out))
    assert run_cli(*args).returncode == 0
    task_dir = out / "t1"
    final = read_jsonl(task_dir / "final_data.jsonl")
    splits = _splits(task_dir, "final_data")
    ids = {s: {r["id"] for r in rows} for s, rows in splits.items()}
    assert set().union(*ids.values()) == {r["id"] for r in final}  # every record, once
    assert sum(len(v) for v in ids.values()) == len(final) == 23
    for s, share in {"train": 0.8, "validation": 0.1, "test": 0.1}.items():
        assert abs(len(ids[s]) - share * 23) <= 1
    # formatted rows follow their record's split; rejected ones are in the rejected store
    formatted = _splits(task_dir, "formatted_data")
    rejected = [r for r in read_jsonl(task_dir / "rejected.jsonl") if r["stage"] == "formatting"]
    assert rejected and all("answer not found verbatim" in r["reason"] for r in rejected)
    kept_ids = {r["id"] for r in final} - {r["record"]["id"] for r in rejected}
    assert sum(len(v) for v in formatted.values()) == len(kept_ids)
    by_question = {r["question"]: r["id"] for r in final}
    for s, rows in formatted.items():
        assert {by_question[r["question"]] for r in rows} <= ids[s]
        assert all(r["context"][r["answer_start"] :].startswith(r["answer"]) for r in rows)
    summary = json.loads((task_dir / "task_results.json").read_text())
    assert summary["rejected_by_block"]["ExtractiveQAFormatter"][
        "answer not found verbatim in the context"
    ] == len(rejected)

    # resumed: same split, rejections not repeated
    (task_dir / "formatted_data.jsonl").unlink()
    assert run_cli(*args).returncode == 0
    assert _splits(task_dir, "final_data") == splits
    again = [r for r in read_jsonl(task_dir / "rejected.jsonl") if r["stage"] == "formatting"]
    assert len(again) == len(rejected)

    # extended: every earlier record keeps its split, the ratios hold for the new count
    assert run_cli(*args, "--num-outputs-to-generate", "47").returncode == 0
    bigger = {s: {r["id"] for r in rows} for s, rows in _splits(task_dir, "final_data").items()}
    assert sum(len(v) for v in bigger.values()) == 47
    for s in ids:
        assert ids[s] <= bigger[s]
        assert abs(len(bigger[s]) - {"train": 0.8}.get(s, 0.1) * 47) <= 1


def test_formatter_by_class_path(tmp_path: Path) -> None:
    write_task(
        tmp_path / "tasks",
        runner_config={"num_outputs_to_generate": 4, "save_formatted_output": True},
        formatter={
            "class_path": "fms_dgt.formatters.finetune:InputOutputFormatter",
            "init_args": {"input": "Q: {{ question }}", "task": "text-generation"},
        },
    )
    out = tmp_path / "out"
    proc = run_cli("--task-paths", str(tmp_path / "tasks"), "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = read_jsonl(out / "t1" / "formatted_data.jsonl")
    assert len(rows) == 4 and all(r["input"].startswith("Q: ") and r["output"] for r in rows)


def test_every_formatter_is_in_the_docs_table() -> None:
    from tests.core.helpers import REPO

    text = (REPO / "docs" / "task_yaml.md").read_text()
    table = text[text.index("### Formatters") : text.index("Templates may read only")]
    documented = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert set(formatters) <= documented, set(formatters) - documented


def test_split_changed_on_a_complete_task(tmp_path: Path) -> None:
    """A complete task re-splits when its split changes, and drops its split files when the
    split is removed (formatting needs no model, so no --restart)."""
    import yaml

    path = _split_task(tmp_path, 10)
    out = tmp_path / "out"
    args = ("--task-paths", str(tmp_path / "tasks"), "--output-dir", str(out))
    assert run_cli(*args).returncode == 0
    spec = yaml.safe_load(path.read_text())
    spec["runner_config"]["split"] = {"train": 0.5, "test": 0.5, "seed": 1}
    path.write_text(yaml.safe_dump(spec))
    assert run_cli(*args).returncode == 0
    task_dir = out / "t1"
    assert len(read_jsonl(task_dir / "final_data_train.jsonl")) == 5
    assert not (task_dir / "final_data_validation.jsonl").exists()
    del spec["runner_config"]["split"]
    path.write_text(yaml.safe_dump(spec))
    assert run_cli(*args).returncode == 0
    assert not list(task_dir.glob("*_train.jsonl")) and not (task_dir / "split_assignment.json").exists()
