"""``text_classification`` on the real default model: the example task (one label by
constrained choice) and, through ``fms_dgt.load(...).process`` from plain Python, several
labels with an explanation (JSON with an enum of the labels). The answers of a 135M model
are poor; what is checked is that every label comes from the set and every record is
typed. A label outside the set, unparseable text: test_label_mechanics.py (fake model)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fms_dgt import load
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_text_classification_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/text_classification/task.yaml"
    spec = yaml.safe_load(task.read_text())
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/text_classification"
    final = read_jsonl(task_dir / "final_data.jsonl")
    # a constrained choice can only be a label: every row gets one, in input order
    assert [r["text"] for r in final] == [row["text"] for row in spec["data"]]
    assert not (task_dir / "rejected.jsonl").exists() or not read_jsonl(task_dir / "rejected.jsonl")
    for record in final:
        assert record["label"] in spec["labels"]
        assert set(record) == {"task_name", "is_seed", "id", "lineage", "text", "label", "model_name"}
        assert record["model_name"] == MODEL and record["lineage"]["model"] == MODEL
        assert record["lineage"]["input_id"] and 0 < record["lineage"]["tokens"]["completion"] <= 8


def test_multi_label_with_explanation_from_python(vllm_engine: Any) -> None:
    labels = ["weather", "sport", "food"]
    rows = [
        {"text": "Heavy rain delayed the start of the football match."},
        {"text": "We grilled fish on the beach under a clear sky."},
    ]
    with load(
        "text_classification",
        engine=vllm_engine,
        labels=labels,
        multi_label=True,
        explanation=True,
        task_description="The labels are the topics a sentence is about.",
    ) as classify:
        out = list(classify.process(rows))
        stats = classify.stats()
    rejected = stats["counts"].get("rejected", 0)
    assert len(out) + rejected == len(rows) and stats["requests"] == len(rows)
    for record in out:
        assert isinstance(record["labels"], list) and set(record["labels"]) <= set(labels)
        assert record["labels"] == [label for label in labels if label in record["labels"]]  # set order
        assert isinstance(record["explanation"], str) and record["explanation"].strip()
        assert record["model_name"] == vllm_engine.model and "label" not in record
