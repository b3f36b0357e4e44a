"""``self_instruct`` mechanics against a scripted model (tests/catalogue/scripted_model.py):
what the prompt holds, the requested list length, each kind of unusable instruction, dedup
against seeds and within a call, and that only instructions the filters keep are answered.
The same builder runs on the real model in test_self_instruct.py."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

from tests.catalogue.scripted_model import as_json, run_scripted

SEEDS = [
    {"instruction": "Suggest a quick breakfast with oats and fruit."},
    {"instruction": "How long should I boil an egg for a runny yolk?"},
]

FRESH = [  # different enough for ROUGE-L dedup
    "How do I make carrot soup without salt?",
    "Which spices suit roasted pumpkin best?",
    "Can I freeze leftover pancake batter overnight?",
]


def _task(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "task_name": name,
        "task_description": "Requests a home cook sends to a cooking assistant.",
        "created_by": "tests",
        "data_builder": "self_instruct",
        "seed_examples": SEEDS,
        **extra,
    }


def test_instructions_are_checked_deduplicated_and_only_kept_ones_answered(tmp_path: Path) -> None:
    calls = itertools.count()

    def answer(prompt: str, structured: bool) -> str:
        if not structured:
            return f"Here is how: {prompt.lower()}"
        n = next(calls)
        new = FRESH[n]
        return as_json(
            "instructions",
            [
                new,
                f" 2. {new}",  # the same again, behind a list marker: a duplicate within the call
                SEEDS[0]["instruction"],  # a copy of a seed
                "Requests a home cook sends to a cooking assistant.",  # the prompt's own text
                "stir the pot stir the pot stir the pot now",  # loops
                "12345 ... 678 !!",  # no words
            ],
        )

    task = _task(
        "si/checks",
        num_instructions=6,
        respond=True,
        criteria=["It names an ingredient.", "It can be answered in a few sentences."],
    )
    run = run_scripted(task, tmp_path, answer, num_outputs_to_generate=2, max_concurrent_calls=1)
    assert run.outcome.status == "complete", run.outcome.message
    generating = [b for b in run.bodies if b.get("response_format")]
    answering = [b for b in run.bodies if not b.get("response_format")]
    prompt = generating[0]["messages"][-1]["content"]
    for text in (task["task_description"], *task["criteria"], *(s["instruction"] for s in SEEDS)):
        assert text in prompt  # application_description defaults to task_description
    schema = generating[0]["response_format"]["json_schema"]["schema"]
    assert (
        schema["properties"]["instructions"]["minItems"]
        == schema["properties"]["instructions"]["maxItems"]
        == 6
    )
    final = run.store("final_data")
    assert [r["instruction"] for r in final] == FRESH[:2]
    for record in final:
        assert record["response"] == f"Here is how: {record['instruction'].lower()}"
        assert record["lineage"]["response"]["engine"] == "responder"
        lineage = record["lineage"]
        assert len(lineage["seed_ids"]) == 2  # seed_batch_size (3) capped by the two seeds
        assert lineage["seed_ids"] + lineage["synthetic_ids"] == lineage["icl_ids"]
    assert final[1]["lineage"]["synthetic_ids"] == [final[0]["id"]]  # accepted ones are shown too
    # only the two new instructions were answered: the others were not worth a request
    assert len(answering) == 2
    reasons = Counter((r["block"], r["reason"]) for r in run.store("rejected"))
    assert reasons == {
        ("self_instruct", "the same instruction twice in one answer"): 2,
        ("unique_instruction", "exact duplicate"): 2,  # of a seed
        ("self_instruct", "the instruction copies the prompt's own text"): 2,
        ("self_instruct", "repeats itself"): 2,
        ("self_instruct", "empty instruction"): 2,
    }
    duplicates = [r["record"] for r in run.store("rejected") if r["block"] == "unique_instruction"]
    assert all(d["response"] is None for d in duplicates)


def test_without_respond_nothing_is_answered(tmp_path: Path) -> None:
    calls = itertools.count()

    def answer(prompt: str, structured: bool) -> str:
        n = next(calls)
        return as_json("instructions", [FRESH[n]])

    task = _task("si/plain", num_instructions=1, application_description="A picnic planner.")
    run = run_scripted(task, tmp_path, answer, num_outputs_to_generate=3, max_concurrent_calls=1)
    assert run.outcome.status == "complete", run.outcome.message
    assert all(b.get("response_format") for b in run.bodies)
    assert "A picnic planner." in run.bodies[0]["messages"][-1]["content"]
    assert all(r["response"] is None and "response" not in r["lineage"] for r in run.store("final_data"))
