"""The ``safety_refusal`` builder on the real default model: its example task (requests to
locate or track private people, with refusals written from a privacy policy), a small
target. What a 135M model cannot be made to do on demand (a refusal with a forbidden phrase,
a judge's verdict, a copied seed) is tested against a fake model in
test_safety_refusal_mechanics.py."""

from __future__ import annotations

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

TASK = REPO / "tasks/examples/safety_refusal/task.yaml"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
OWN_REASONS = ("not a request: fewer than 3 words", "the same request twice in one answer")
FILTERS = {"non_empty", "request_length", "unique_request", "similar_request"}


def test_requests_with_policy_refusals(run_example: RunExample) -> None:
    rt, outcome = run_example(TASK, target=2)
    assert outcome.status == "complete", outcome.message
    task = rt.prepared[0].task
    seeds = {s.id for s in task.seed_examples}  # type: ignore[attr-defined]
    policy = yaml.safe_load((TASK.parent / "policy.yaml").read_text())
    risk = policy["risks"][0]
    task_dir = rt.output_dir / "examples/safety_refusal"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 2
    for record in final:
        assert record["instruction"].strip() and record["response"].strip()
        assert record["source"] == "synthetic"
        assert record["metadata"] == {
            "risk": risk["risk"],
            "risk_id": risk["risk_id"],
            "risk_group": policy["risk_group"],
            "risk_group_id": policy["risk_group_id"],
            "policy_version": policy["policy_version"],
            "reason_denial": risk["reason_denial"],
            "short_reply_type": risk["short_reply_type"],
            "exception": risk["exception"],
        }
        lineage = record["lineage"]
        assert lineage["model"] == MODEL and lineage["engine"] == "llm1"
        assert 1 <= len(lineage["seed_ids"]) <= 2 and set(lineage["seed_ids"]) <= seeds  # num_icl_examples
        assert (
            lineage["response"]["engine"] == "responder" and lineage["response"]["tokens"]["completion"] > 0
        )
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert [(r["instruction"], r["response"]) for r in formatted] == [
        (r["instruction"], r["response"]) for r in final
    ]
    rejected = task_dir / "rejected.jsonl"
    for rejection in read_jsonl(rejected) if rejected.exists() else []:
        block, reason = rejection["block"], rejection["reason"]
        if block == "safety_refusal":
            assert reason in OWN_REASONS
        elif block == "policy_check":
            item = reason.split("(reply_cannot_contain): ", 1)[1]
            assert item in risk["policy"]["reply_cannot_contain"]
        elif block == "respond":
            assert reason == "empty response"
        else:
            assert block in FILTERS, rejection
