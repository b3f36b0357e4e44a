"""Named options drawn by weight (an evol builder's operators or aspects, ...).

A task.yaml gives them as a list of names (equal weights) or a mapping name -> weight; the
checks and the draws are the same for every builder that offers such a choice, so they
live here once: the task names its key and what one option is called, and gets located
errors (file, line, field) for an unknown name, a name listed twice, a negative weight,
an empty choice or all-zero weights.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fms_dgt.registry import did_you_mean

if TYPE_CHECKING:
    from fms_dgt.task import Task

Given = list[str] | dict[str, float] | None


def named_weights(
    task: Task, given: Given, known: Mapping[str, str], key: str, noun: str
) -> dict[str, float]:
    """``given`` (the task.yaml's ``key``) as name -> weight over ``known``'s names; all of
    them, equally weighted, when ``given`` is None. ``noun``: what one option is called in
    messages ("operator", "aspect")."""
    if given is None:
        return dict.fromkeys(known, 1.0)
    if not given:
        raise task.config_error(f"{key} is empty", key, hint=f"name at least one of: {', '.join(known)}")
    weights = dict.fromkeys(given, 1.0) if isinstance(given, list) else dict(given)
    for i, name in enumerate(given):
        where: int | str = i if isinstance(given, list) else name
        if name not in known:
            hint = did_you_mean(name, list(known)) or f"{key}: {', '.join(known)}"
            raise task.config_error(f"unknown {noun} '{name}'", key, where, hint=hint)
        if isinstance(given, list) and given.index(name) != i:
            raise task.config_error(f"{noun} '{name}' is listed twice", key, where)
        if weights[name] < 0:
            raise task.config_error(f"{noun} '{name}' has a negative weight", key, where)
    if not any(w > 0 for w in weights.values()):
        raise task.config_error(f"every {noun} weight is zero: none could be drawn", key)
    return weights


def draw_new(weights: Mapping[str, float], rng: random.Random, tried: list[str]) -> str:
    """One weighted draw among the names not in ``tried`` (among all once every name with a
    weight has been tried): a retry tries something else while anything else is left."""
    drawable = {n: w for n, w in weights.items() if w > 0}
    pool = {n: w for n, w in drawable.items() if n not in tried} or drawable
    return rng.choices(list(pool), weights=list(pool.values()))[0]


def draws(weights: Mapping[str, float], rng: random.Random, count: int) -> list[str]:
    """``count`` draws in order, each unlike the ones before while any is left."""
    tried: list[str] = []
    for _ in range(count):
        tried.append(draw_new(weights, rng, tried))
    return tried
