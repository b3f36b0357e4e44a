"""The ``self_instruct`` builder on the real default model: its example task (new requests
for a cooking assistant, each answered), a small target. What a 135M model cannot be made
to do on demand (copy a seed, echo the prompt, fail a request) is tested against a
scripted server in test_self_instruct_mechanics.py."""

from __future__ import annotations

import pytest

from fms_dgt.metrics.text import normalize_answer
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

TASK = REPO / "tasks/examples/self_instruct/task.yaml"
OWN_REASONS = {"empty instruction", "the instruction copies the prompt's own text", "repeats itself"}


def test_new_instructions_with_responses(run_example: RunExample) -> None:
    rt, outcome = run_example(TASK, target=3)
    assert outcome.status == "complete", outcome.message
    task = rt.prepared[0].task
    seeds = {s.id: s.instruction for s in task.seed_examples}  # type: ignore[attr-defined]
    task_dir = rt.output_dir / "examples/self_instruct"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 3
    seen = {normalize_answer(text) for text in seeds.values()}
    for record in final:
        assert (
            normalize_answer(record["instruction"]) not in seen
        )  # deduplicated against seeds and each other
        seen.add(normalize_answer(record["instruction"]))
        assert record["response"] and record["response"] == record["response"].strip()
        lineage = record["lineage"]
        assert lineage["seed_ids"] and set(lineage["seed_ids"]) <= set(seeds)
        assert set(lineage["seed_ids"]) | set(lineage["synthetic_ids"]) == set(lineage["icl_ids"])
        assert lineage["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and lineage["engine"] == "llm1"
        assert (
            lineage["response"]["engine"] == "responder" and lineage["response"]["tokens"]["completion"] > 0
        )
    rejected = task_dir / "rejected.jsonl"
    for rejection in read_jsonl(rejected) if rejected.exists() else []:
        if rejection["block"] == "self_instruct":
            assert rejection["reason"] in OWN_REASONS and "raw" in rejection["record"]
