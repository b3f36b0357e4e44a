"""``inference`` on the real default model: the example task (a template over the rows'
columns, the row kept whole, per-task sampling), and through ``fms_dgt.load(...).process``
from plain Python. Mechanics against a fake model: test_transform_mechanics.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fms_dgt import load
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_inference_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/inference/task.yaml"
    rows = yaml.safe_load(task.read_text())["data"]
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    final = read_jsonl(rt.output_dir / "examples/inference/final_data.jsonl")
    assert [r["row"] for r in final] == rows  # every column of every row, in input order
    for record in final:
        assert record["summary"].strip() and record["model_name"] == MODEL
        lineage = record["lineage"]
        assert lineage["model"] == MODEL and lineage["prompt_template"] and lineage["input_id"]
        assert 0 < lineage["tokens"]["completion"] <= 64  # the task's sampling: max_tokens 64


def test_inference_from_python(vllm_engine: Any) -> None:
    rows = [
        {"question": "What colour is the sky on a clear day?", "topic": "weather"},
        {"question": "How many legs does a spider have?", "topic": "animals"},
    ]
    with load(
        "inference",
        engine=vllm_engine,
        input_field="question",
        output_field="answer",
        system_prompt="Answer in one short sentence.",
        sampling={"max_tokens": 24, "temperature": 0.0},
    ) as infer:
        out = list(infer.process(rows))
        stats = infer.stats()
    assert [r["row"] for r in out] == rows
    assert all(r["answer"].strip() and r["model_name"] == vllm_engine.model for r in out)
    assert stats["requests"] == 2 and 0 < stats["tokens"]["completion"] <= 48
