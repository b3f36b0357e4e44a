"""``quality_scorer`` on the real default model: the example task, every row ending as one
score per response (an integer 1..max_score, None for a blank response) or as a rejection
that keeps the raw answer. Each rejection reason on demand: test_judge_mechanics.py."""

from __future__ import annotations

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
REASONS = ("unparseable answer: ", "invalid answer: ", "count mismatch: ", "score ")


def test_quality_scorer_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/quality_scorer/task.yaml"
    spec = yaml.safe_load(task.read_text())
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/quality_scorer"
    final = read_jsonl(task_dir / "final_data.jsonl")
    rejected = read_jsonl(task_dir / "rejected.jsonl") if (task_dir / "rejected.jsonl").exists() else []
    rows = {r["instruction"]: r["responses"] for r in spec["data"]}
    for record in final:
        assert rows[record["instruction"]] == record["responses"]
        assert len(record["scores"]) == len(record["responses"])  # one per response, in order
        for response, score in zip(record["responses"], record["scores"]):
            if response.strip():
                assert isinstance(score, int) and 1 <= score <= spec["max_score"]
            else:
                assert score is None  # a blank response is not scored
        assert record["model_name"] == MODEL and record["lineage"]["model"] == MODEL
    for rejection in rejected:
        assert rejection["block"] == "quality_scorer" and rejection["reason"].startswith(REASONS)
        raw = rejection["record"]["raw"]
        assert rows[raw["instruction"]] == raw["responses"] and isinstance(raw["output"], str)
    assert len(final) + len(rejected) == len(rows)
