"""``instruction_backtranslation`` on the real default model: the example task, every row
ending as a typed rating (score 1..5, a reason, the model's name) or as a rejection that
keeps the raw answer; and the builder used from plain Python through ``fms_dgt.load``.
Each rejection reason on demand: test_judge_mechanics.py."""

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


def test_instruction_backtranslation_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/instruction_backtranslation/task.yaml"
    rows = yaml.safe_load(task.read_text())["data"]
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/instruction_backtranslation"
    final = read_jsonl(task_dir / "final_data.jsonl")
    rejected = read_jsonl(task_dir / "rejected.jsonl") if (task_dir / "rejected.jsonl").exists() else []
    pairs = [(r["instruction"], r["generation"]) for r in rows]
    for record in final:
        assert (record["instruction"], record["generation"]) in pairs
        assert isinstance(record["score"], int) and 1 <= record["score"] <= 5
        assert isinstance(record["reason"], str)
        assert record["model_name"] == MODEL and record["lineage"]["model"] == MODEL
        assert record["lineage"]["input_id"] and record["lineage"]["prompt_template"]
    for rejection in rejected:
        assert rejection["block"] == "instruction_backtranslation"
        assert rejection["reason"].startswith(REASONS)
        raw = rejection["record"]["raw"]
        assert (raw["instruction"], raw["generation"]) in pairs and isinstance(raw["output"], str)
    assert len(final) + len(rejected) == len(rows)  # one verdict per row, kept or rejected


def test_instruction_backtranslation_from_python(vllm_engine: Any) -> None:
    rows = [
        {"instruction": "What is the capital of France?", "generation": "Paris is the capital of France."},
        {"instruction": "Name a primary colour.", "generation": "Red is a primary colour."},
    ]
    with load("instruction_backtranslation", engine=vllm_engine) as rate:
        out = list(rate.process(rows))
        stats = rate.stats()
    assert stats["requests"] == 2  # one request per row, none retried
    for record in out:  # the accepted ratings, in input order
        assert {"instruction": record["instruction"], "generation": record["generation"]} in rows
        assert 1 <= record["score"] <= 5 and record["model_name"] == vllm_engine.model
