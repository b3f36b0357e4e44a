"""``prometheus_eval`` on the real default model: the example task (absolute mode, a
built-in rubric, reference answers on some rows), every row ending as feedback and a score
1..5 or as a rejection that keeps the raw answer; and relative mode (A or B) through
``fms_dgt.load`` from plain Python. Each rejection reason on demand, a tie, rubrics given
as text or by your own name: test_judge_mechanics.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fms_dgt import load
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
REASONS = ("unparseable answer: ", "invalid answer: ")


def test_prometheus_eval_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/prometheus_eval/task.yaml"
    spec = yaml.safe_load(task.read_text())
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/prometheus_eval"
    final = read_jsonl(task_dir / "final_data.jsonl")
    rejected = read_jsonl(task_dir / "rejected.jsonl") if (task_dir / "rejected.jsonl").exists() else []
    rows = {r["instruction"]: r for r in spec["data"]}
    for record in final:
        row = rows[record["instruction"]]
        assert record["response"] == row["response"]
        assert record["reference_answer"] == row.get("reference_answer")
        assert record["rubric"] == spec["rubric"] and isinstance(record["feedback"], str)
        assert isinstance(record["result"], int) and 1 <= record["result"] <= 5
        assert record["model_name"] == MODEL and record["lineage"]["input_id"]
    for rejection in rejected:
        assert rejection["block"] == "prometheus_eval" and rejection["reason"].startswith(REASONS)
        assert rejection["record"]["raw"]["instruction"] in rows
    assert len(final) + len(rejected) == len(rows)


def test_prometheus_eval_relative_from_python(vllm_engine: Any) -> None:
    rows = [
        {"instruction": "What is 2 + 2?", "response_a": "4", "response_b": "5"},
        {
            "instruction": "Name a primary colour.",
            "response_a": "Blue is a primary colour.",
            "response_b": "Colours are nice.",
            "reference_answer": "Red, yellow and blue are primary colours.",
        },
    ]
    with load("prometheus_eval", engine=vllm_engine, mode="relative", rubric="helpfulness") as judge:
        out = list(judge.process(rows))
        stats = judge.stats()
    assert stats["requests"] == 2  # one request per pair, none retried
    for record in out:
        assert record["result"] in ("A", "B") and record["rubric"] == "helpfulness"
        assert record["response_a"] in ("4", "Blue is a primary colour.")
        assert record["model_name"] == vllm_engine.model
