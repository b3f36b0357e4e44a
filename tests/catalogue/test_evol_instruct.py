"""The ``evol_instruct`` builder on the real default model: both example tasks (from seeds,
from topics with answers), two generations each, small targets. The mechanics a 135M model
cannot be made to show on demand (each kind of unusable step, retries with another
operator, a failed request mid-chain, the ``topic`` sampler, keep_intermediate) are tested
against a scripted server in test_evol_instruct_mechanics.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.metrics.text import normalize_answer
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

EXAMPLES = REPO / "tasks/examples/evol_instruct"
REASONS = {
    "identical to its parent",
    "empty instruction",
    "the model echoed the prompt instead of writing an instruction",
    "repeats itself",  # a documented reason the sampled model sometimes earns
}


def _check_chain(record: dict[str, Any], first_operator: str, operators: set[str]) -> None:
    evolution = record["evolution"]
    assert [step["generation"] for step in evolution] == [0, 1, 2]  # generations: 2
    assert evolution[0]["operator"] == first_operator
    assert all(step["operator"] in operators for step in evolution[1:])
    assert record["instruction"] == evolution[-1]["instruction"]
    for parent, child in zip(evolution, evolution[1:]):
        assert normalize_answer(child["instruction"]) != normalize_answer(parent["instruction"])
    lineage = record["lineage"]
    assert lineage["operators"] == [step["operator"] for step in evolution[1:]]
    assert lineage["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and lineage["engine"] == "llm1"
    assert lineage["tokens"]["completion"] > 0 and lineage["prompt_template"]


def _check_rejections(task_dir: Path) -> None:
    path = task_dir / "rejected.jsonl"
    for rejection in read_jsonl(path) if path.exists() else []:
        if rejection["block"] == "evol_step":
            reason = rejection["reason"]
            assert reason in REASONS or reason.startswith("talks about the rewriting ("), reason
            raw = rejection["record"]["raw"]
            assert {"operator", "generation", "parent", "output", "evolution"} <= set(raw)


def test_evolving_seed_instructions(run_example: RunExample) -> None:
    task = EXAMPLES / "seeds/task.yaml"
    rt, outcome = run_example(task, target=2)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/evol_instruct/seeds"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 2
    seeds = {s["instruction"]: s for s in yaml.safe_load(task.read_text())["seed_examples"]}
    for record in final:
        _check_chain(record, "seed", {"add_constraints", "concretize", "deepen", "increase_reasoning"})
        assert record["evolution"][0]["instruction"] in seeds
        assert record["lineage"]["seed_id"] == record["lineage"]["icl_ids"][0]
        assert record["topic"] is None and record["response"] is None
    _check_rejections(task_dir)


def test_evolving_from_topics_and_answering(run_example: RunExample) -> None:
    task = EXAMPLES / "topics/task.yaml"
    rt, outcome = run_example(task, target=2)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/evol_instruct/topics"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 2
    topics = yaml.safe_load(task.read_text())["topics"]
    for record in final:
        _check_chain(record, "from_topic", {"add_constraints", "concretize", "breadth"})
        assert record["topic"] in topics
        assert record["response"] and record["response"].strip() == record["response"]
        answered = record["lineage"]["response"]
        assert answered["engine"] == "responder" and answered["tokens"]["completion"] > 0
    _check_rejections(task_dir)
