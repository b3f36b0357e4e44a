"""Task and record types of the ``quality_scorer`` builder: a quality score for each of
several responses to one instruction, asked for in one request (the Deita quality scorer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.builders.judging import texts_problem

MAX_SCALE = 10


@dataclass(kw_only=True)
class InstructionResponses(DataPoint):
    """An input row: an instruction and the responses to score (a non-empty list of texts)."""

    instruction: str
    responses: list[str]

    def __post_init__(self) -> None:
        problem = texts_problem(self.responses, "responses")
        if problem:
            raise ValueError(problem)
        super().__post_init__()


@dataclass(kw_only=True)
class ScoredResponses(DataPoint):
    """The row with ``scores``: one per response, in order, 1..max_score; None for a blank
    response (not shown to the model)."""

    instruction: str
    responses: list[str]
    scores: list[int | None]
    model_name: str | None = None


class QualityScorerTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``max_score``: the top of the scale, 2..10 (default 6, as Deita's scorers: 1..6).
    """

    INPUT_DATA_TYPE = InstructionResponses
    OUTPUT_DATA_TYPE = ScoredResponses

    def __init__(self, *, max_score: int = 6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 2 <= max_score <= MAX_SCALE:
            raise self.config_error(
                f"max_score must be between 2 and {MAX_SCALE}, got {max_score}", "max_score"
            )
        self.max_score = max_score
