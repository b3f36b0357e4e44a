"""The ``simple`` builder's output schema: its patterns accept the example task's own seed
pairs, refuse what small models tend to echo, and validate in linear time (every record is
checked against them, so a near miss must not make the regex engine backtrack for minutes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from data_builders.simple.generate import PAIR_SCHEMA
from fms_dgt.engines.structured import schema_validator

REPO = Path(__file__).resolve().parents[2]
CAUSAL = REPO / "tasks/core/simple/logical_reasoning/causal/task.yaml"


def _valid(question: str, answer: str) -> bool:
    return schema_validator(PAIR_SCHEMA).is_valid({"question": question, "answer": answer})


def test_seed_examples_fit_the_schema() -> None:
    seeds = yaml.safe_load(CAUSAL.read_text())["seed_examples"]
    assert seeds
    for seed in seeds:
        assert _valid(seed["question"], seed["answer"]), seed


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Question:", "It rained earlier today."),  # an echoed label
        ("Question: Why is the road wet after the storm?", "It rained earlier today."),
        ("What could explain it?", "It rained earlier today."),  # under five words
        ("why is the road wet this morning?", "It rained earlier today."),  # not capitalised
        ("Why is the road wet this morning", "It rained earlier today."),  # no question mark
        ("Why is the road wet this morning?", "Rain."),  # too short an answer
        ("Why is the road wet this morning?", "It rained. Then it dried. Then it rained again."),
        ("Why is the road wet this morning?", 'It said "rain" all day.'),
        ("Why is the road wet at 10: this morning?", "It rained earlier today."),  # ":" not between digits
    ],
)
def test_echoes_and_fragments_are_refused(question: str, answer: str) -> None:
    assert not _valid(question, answer)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("How do you convert 3.5 km into miles exactly?", "To convert 3.5 km, multiply by 0.62."),
        (
            "The train left at 10:30 and arrived at 12:15; how long was the trip?",
            "It took 1 hour and 45 minutes.",
        ),
        (
            "15 men build a wall in 3 days; how long would 5 men take?",
            "It takes 9 days. Fewer men work longer.",
        ),
    ],
)
def test_numbers_decimals_and_times_are_allowed(question: str, answer: str) -> None:
    """Numeric topics must not come out cut ("To convert 3. Fifteen men ...")."""
    assert _valid(question, answer)


def test_near_misses_validate_quickly() -> None:
    near_misses = [
        ("Why " + "a b " * 400 + "x", "It rained earlier today."),
        ("Why is the road wet this morning?", "It " + "rained  a " * 400),
    ]
    started = time.perf_counter()
    for question, answer in near_misses:
        assert not _valid(question, answer)
    assert time.perf_counter() - started < 0.5
