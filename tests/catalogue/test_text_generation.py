"""``text_generation`` and ``chat_generation`` on the real default model: the example tasks,
every row answered (two samples per instruction in one request; the next turn of each
conversation). Mechanics a 135M model cannot show on demand (an empty sample, a failed
request) are tested against a fake model in test_transform_mechanics.py."""

from __future__ import annotations

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
EXAMPLES = REPO / "tasks/examples"


def test_text_generation_example(run_example: RunExample) -> None:
    task = EXAMPLES / "text_generation/task.yaml"
    spec = yaml.safe_load(task.read_text())
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/text_generation"
    final = read_jsonl(task_dir / "final_data.jsonl")
    rejected = read_jsonl(task_dir / "rejected.jsonl") if (task_dir / "rejected.jsonl").exists() else []
    assert len(final) + len(rejected) == 2 * len(spec["data"])  # num_generations: 2
    assert all(r["reason"] == "empty generation" for r in rejected)
    by_row: dict[str, list[int]] = {}
    for record in final:
        by_row.setdefault(record["instruction"], []).append(record["generation_index"])
        assert record["generation"].strip() == record["generation"] and record["generation"]
        assert record["model_name"] == MODEL
        lineage = record["lineage"]
        assert lineage["model"] == MODEL and lineage["input_id"] and lineage["tokens"]["completion"] > 0
        row = next(r for r in spec["data"] if r["instruction"] == record["instruction"])
        assert record["system_prompt"] == row.get("system_prompt", spec["system_prompt"])
    assert list(by_row) == [r["instruction"] for r in spec["data"]]  # input order
    assert all(indices in ([0, 1], [0], [1]) for indices in by_row.values())
    samples = [r["generation"] for r in final if r["instruction"] == spec["data"][0]["instruction"]]
    assert len(set(samples)) == len(samples)  # n samples, not one answer twice


def test_chat_generation_example(run_example: RunExample) -> None:
    task = EXAMPLES / "chat_generation/task.yaml"
    spec = yaml.safe_load(task.read_text())
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    final = read_jsonl(rt.output_dir / "examples/chat_generation/final_data.jsonl")
    assert len(final) == len(spec["data"])
    for record, row in zip(final, spec["data"]):
        given = row["messages"]
        if given[0]["role"] != "system":  # the task's system prompt goes first
            given = [{"role": "system", "content": spec["system_prompt"]}, *given]
        assert record["messages"] == given
        assert record["generation"] and record["conversation"] == [
            *given,
            {"role": "assistant", "content": record["generation"]},
        ]
        assert record["model_name"] == MODEL and record["lineage"]["model"] == MODEL
