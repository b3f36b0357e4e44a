"""Weighted draws of named options (fms_dgt/builders/weighted.py): a retry draws something
not tried yet while anything is left, zero weights are never drawn, and the same seed draws
the same sequence."""

from __future__ import annotations

import random

from fms_dgt.builders.weighted import draw_new, draws


def test_draws_try_every_option_before_repeating_one() -> None:
    weights = {"a": 1.0, "b": 5.0, "c": 0.5}
    for seed in range(50):
        got = draws(weights, random.Random(seed), 5)
        assert sorted(got[:3]) == ["a", "b", "c"]  # all three before any repeat
        assert len(got) == 5


def test_zero_weights_are_never_drawn_even_when_all_else_was_tried() -> None:
    weights = {"a": 1.0, "never": 0.0}
    assert set(draws(weights, random.Random(1), 6)) == {"a"}
    assert draw_new(weights, random.Random(2), ["a"]) == "a"


def test_the_same_seed_draws_the_same_sequence() -> None:
    weights = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}
    assert draws(weights, random.Random("7:row"), 4) == draws(weights, random.Random("7:row"), 4)
