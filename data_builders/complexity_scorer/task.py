"""Task and record types of the ``complexity_scorer`` builder: a complexity score for each
of several instructions, asked for in one request (the Deita complexity scorer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.builders.judging import texts_problem

MAX_SCALE = 10


@dataclass(kw_only=True)
class Instructions(DataPoint):
    """An input row: the instructions to score side by side (a non-empty list of texts),
    e.g. an instruction and its evolved versions."""

    instructions: list[str]

    def __post_init__(self) -> None:
        problem = texts_problem(self.instructions, "instructions")
        if problem:
            raise ValueError(problem)
        super().__post_init__()


@dataclass(kw_only=True)
class ScoredInstructions(DataPoint):
    """The row with ``scores``: one per instruction, in order, 1..max_score; None for a
    blank instruction (not shown to the model)."""

    instructions: list[str]
    scores: list[int | None]
    model_name: str | None = None


class ComplexityScorerTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``max_score``: the top of the scale, 2..10 (default 6, as Deita's scorers: 1..6).
    """

    INPUT_DATA_TYPE = Instructions
    OUTPUT_DATA_TYPE = ScoredInstructions

    def __init__(self, *, max_score: int = 6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 2 <= max_score <= MAX_SCALE:
            raise self.config_error(
                f"max_score must be between 2 and {MAX_SCALE}, got {max_score}", "max_score"
            )
        self.max_score = max_score
