"""The fine-tuning formats, the split and the export on the default model's output: the
knowledge_qa example (questions answered from document chunks) run on SmolLM2 through the
session's vLLM engine, formatted as extractive QA with a 50/25/25 split, then exported and
loaded back with ``datasets``. A 135M model's answers are rarely verbatim spans of their
chunk, so both outcomes are checked: every written row's answer is found in its context
at ``answer_start``, and every other record is in the rejected store with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import fms_dgt.formatters  # noqa: F401
from fms_dgt.export.folder import export_task
from fms_dgt.export.splits import quotas
from fms_dgt.registry import formatters
from fms_dgt.report import read_store
from tests.catalogue.conftest import REPO
from tests.export.helpers import load, rows

pytestmark = pytest.mark.vllm
SPLITS = ("train", "validation", "test")


def test_extractive_qa_split_and_export_on_the_default_model(run_example, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "task"
    shutil.copytree(REPO / "tasks" / "examples" / "knowledge_qa", folder)
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    spec["task_name"] = "export/knowledge_qa"
    spec["runner_config"].update(
        save_formatted_output=True, split={"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 5}
    )
    spec["formatter"] = {"type": "extractive_qa", "ignore_case": True}
    (folder / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    rt, outcome = run_example(folder / "task.yaml", target=4)
    assert outcome.status == "complete", outcome.message
    task_dir = tmp_path / "out" / "export" / "knowledge_qa"
    final = list(read_store(task_dir, "final_data"))
    assert len(final) == 4

    # the split: disjoint, covering, in ratio to the row
    split_ids = {s: [r["id"] for r in read_store(task_dir, f"final_data_{s}")] for s in SPLITS}
    assert sorted(i for ids in split_ids.values() for i in ids) == sorted(r["id"] for r in final)
    assert {s: len(v) for s, v in split_ids.items()} == quotas(
        4, {"train": 0.5, "validation": 0.25, "test": 0.25}
    )

    # extractive QA: written rows are real spans, the others rejected with the reason
    formatted = {s: list(read_store(task_dir, f"formatted_data_{s}")) for s in SPLITS}
    written = [r for v in formatted.values() for r in v]
    for row in written:
        start = row["answer_start"]
        assert row["context"][start : start + len(row["answer"])] == row["answer"]
    rejected = [r for r in read_store(task_dir, "rejected") if r.get("stage") == "formatting"]
    assert len(written) + len(rejected) == len(final)
    assert all(r["reason"].startswith(("answer not found verbatim", "empty answer")) for r in rejected)

    # the other formats validate on the same model output
    chat = list(formatters.get("chat")().format_all(final))
    assert all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in chat)
    io = list(formatters.get("input_output")(input="{{ context }}\n\n{{ question }}").format_all(final))
    assert all(set(r) == {"input", "output"} and r["input"] and r["output"] for r in io)

    # resumed (already complete): the same split
    _, again = run_example(folder / "task.yaml", target=4)
    assert again.status == "complete"
    assert {s: [r["id"] for r in read_store(task_dir, f"final_data_{s}")] for s in SPLITS} == split_ids

    # export, then load back both ways
    out = tmp_path / "dataset"
    result = export_task(task_dir, out)
    assert result.training is not None and result.training["task"] == "extractive-question-answering"
    assert any("below the minimum" in w for w in result.warnings)
    by_folder = rows(load(tmp_path, str(out)))
    assert by_folder == rows(load(tmp_path, "parquet", data_dir=str(out / "data")))
    assert {s: [r["id"] for r in v] for s, v in by_folder.items()} == split_ids
    assert all(r["lineage"]["builder"] == "knowledge_qa" for v in by_folder.values() for r in v)
