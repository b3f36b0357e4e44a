"""``complexity_scorer`` on the real default model: the example task, every row ending as
one score per instruction (an integer 1..6, None for a blank instruction) or as a rejection
that keeps the raw answer. Each rejection reason on demand: test_judge_mechanics.py."""

from __future__ import annotations

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
REASONS = ("unparseable answer: ", "invalid answer: ", "count mismatch: ", "score ")


def test_complexity_scorer_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/complexity_scorer/task.yaml"
    rows = [r["instructions"] for r in yaml.safe_load(task.read_text())["data"]]
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/complexity_scorer"
    final = read_jsonl(task_dir / "final_data.jsonl")
    rejected = read_jsonl(task_dir / "rejected.jsonl") if (task_dir / "rejected.jsonl").exists() else []
    for record in final:
        assert record["instructions"] in rows and len(record["scores"]) == len(record["instructions"])
        for instruction, score in zip(record["instructions"], record["scores"]):
            if instruction.strip():
                assert isinstance(score, int) and 1 <= score <= 6  # the default scale
            else:
                assert score is None
        assert record["model_name"] == MODEL and record["lineage"]["input_id"]
    for rejection in rejected:
        assert rejection["block"] == "complexity_scorer" and rejection["reason"].startswith(REASONS)
        assert rejection["record"]["raw"]["instructions"] in rows
    assert len(final) + len(rejected) == len(rows)
