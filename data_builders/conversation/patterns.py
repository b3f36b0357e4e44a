"""User patterns: what kind of message the person writes next ("a follow-up question", "asks
for clarification", "says goodbye"). Each user turn draws one pattern by weight; its hint
steers the user model's message. Drawing an end pattern (from ``min_turns`` on) makes that
exchange the conversation's last.

The draws of conversation ``i`` depend only on ``runner_config.seed`` and ``i`` (a resumed
run draws the same patterns)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fms_dgt.errors import ConfigError, Problems
from fms_dgt.registry import did_you_mean


class UserPattern(BaseModel):
    """One kind of user message: ``hint`` (or else ``description``) is what the user model is
    told; ``weight`` (0 or more) its relative chance of being drawn."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    hint: str | None = None
    description: str | None = None
    weight: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _steers(self) -> UserPattern:
        if not (self.hint or "").strip() and not (self.description or "").strip():
            raise ValueError(f"pattern '{self.name}' needs a hint (or a description) to steer the message")
        return self

    @property
    def steer(self) -> str:
        """The text that steers the user model."""
        return " ".join((self.hint or self.description or "").split())


Locate = Callable[..., ConfigError]  # (message, *keys, hint=...) -> a located error


class PatternDraw:
    """A task's user patterns and end patterns, checked, and the draw of each turn."""

    def __init__(
        self,
        patterns: list[UserPattern],
        end_names: list[str],
        error: Locate,
        at: tuple[Any, ...],
        end_at: tuple[Any, ...],
    ) -> None:
        problems = Problems()
        seen: set[str] = set()
        for i, pattern in enumerate(patterns):
            if pattern.name in seen:
                problems.add(error(f"pattern '{pattern.name}' is listed twice", *at, i, "name"))
            seen.add(pattern.name)
        for i, name in enumerate(end_names):
            if name not in seen:
                hint = did_you_mean(name, seen) or f"patterns: {', '.join(p.name for p in patterns)}"
                problems.add(error(f"end pattern '{name}' is not one of the patterns", *end_at, i, hint=hint))
        ends = set(end_names)
        if not any(p.weight > 0 and p.name not in ends for p in patterns):
            problems.add(
                error(
                    "no pattern that continues the conversation has a weight above 0",
                    *at,
                    hint="the turns before min_turns draw among the patterns that do not end it",
                )
            )
        problems.raise_if_any()
        self.patterns = patterns
        self.ends = ends

    def draw(self, rng: random.Random, may_end: bool) -> UserPattern:
        """One pattern by weight (end patterns only when ``may_end``)."""
        pool = [p for p in self.patterns if p.weight > 0 and (may_end or p.name not in self.ends)]
        return rng.choices(pool, weights=[p.weight for p in pool])[0]

    def ends_with(self, pattern: UserPattern) -> bool:
        return pattern.name in self.ends
