"""``ultrafeedback`` on the real default model: the example task, every row ending as one
rating (1..5) and one rationale per generation on the task's aspect, or as a rejection that
keeps the raw answer. Each rejection reason on demand: test_judge_mechanics.py."""

from __future__ import annotations

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
REASONS = ("unparseable answer: ", "invalid answer: ", "count mismatch: ")


def test_ultrafeedback_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/ultrafeedback/task.yaml"
    spec = yaml.safe_load(task.read_text())
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/ultrafeedback"
    final = read_jsonl(task_dir / "final_data.jsonl")
    rejected = read_jsonl(task_dir / "rejected.jsonl") if (task_dir / "rejected.jsonl").exists() else []
    rows = {r["instruction"]: r["generations"] for r in spec["data"]}
    for record in final:
        assert rows[record["instruction"]] == record["generations"]
        assert record["aspect"] == spec["aspect"]
        n = len(record["generations"])
        assert len(record["ratings"]) == len(record["rationales"]) == n
        assert all(isinstance(r, int) and 1 <= r <= 5 for r in record["ratings"])
        assert all(isinstance(r, str) for r in record["rationales"])
        assert record["model_name"] == MODEL and record["lineage"]["model"] == MODEL
    for rejection in rejected:
        assert rejection["block"] == "ultrafeedback" and rejection["reason"].startswith(REASONS)
        raw = rejection["record"]["raw"]
        assert rows[raw["instruction"]] == raw["generations"] and isinstance(raw["output"], str)
    assert len(final) + len(rejected) == len(rows)
