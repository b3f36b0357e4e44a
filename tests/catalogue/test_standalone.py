"""Builders from plain Python, without a task.yaml (``fms_dgt.load``), on the real default
model: the same filters, retries and accounting as a run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fms_dgt import load

pytestmark = pytest.mark.vllm

QUESTIONS = [
    {"question": "Why is the sky blue?"},
    {"question": "What makes ice float?"},
    {"question": "Why do leaves fall?"},
]


def test_process_rows_through_a_transformation_builder(vllm_engine: Any) -> None:
    with load("answer_questions", engine=vllm_engine) as answers:
        out = list(answers.process(QUESTIONS))
        assert [r["question"] for r in out] == [q["question"] for q in QUESTIONS]  # input order
        assert all(r["answer"].strip() and r["lineage"]["model"] == vllm_engine.model for r in out)
        stats = answers.stats()
        assert stats["requests"] >= 3 and stats["tokens"]["completion"] > 0

        # the async form, on the caller's loop
        async def collect() -> list[dict[str, Any]]:
            return [r async for r in answers.aprocess(QUESTIONS[:1])]

        assert len(asyncio.run(collect())) == 1


def test_generate_with_a_generation_builder(vllm_engine: Any) -> None:
    seeds = [
        {"question": "Why does a spoon in hot tea get warm?", "answer": "Metal conducts heat from the tea."},
        {"question": "Why do we see lightning before thunder?", "answer": "Light travels faster than sound."},
    ]
    with load(
        "simple", engine=vllm_engine, seed_examples=seeds, task_description="Everyday physics."
    ) as simple:
        records = simple.generate(2)
    assert len(records) == 2 and all(r["question"].endswith("?") for r in records)
