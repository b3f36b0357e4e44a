"""Task and record types of the ``ultrafeedback`` builder: each of several generations for
one instruction rated on one aspect, 1 to 5 with a rationale (UltraFeedback)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.builders.judging import texts_problem

Aspect = Literal["helpfulness", "honesty", "instruction_following", "truthfulness", "overall"]
MIN_RATING, MAX_RATING = 1, 5


@dataclass(kw_only=True)
class InstructionGenerations(DataPoint):
    """An input row: an instruction and the generations to rate (a non-empty list of texts)."""

    instruction: str
    generations: list[str]

    def __post_init__(self) -> None:
        problem = texts_problem(self.generations, "generations")
        if problem:
            raise ValueError(problem)
        super().__post_init__()


@dataclass(kw_only=True)
class RatedGenerations(DataPoint):
    """The row with one ``rating`` (1..5) and one ``rationale`` per generation, in order,
    on ``aspect``."""

    instruction: str
    generations: list[str]
    aspect: str
    ratings: list[int]
    rationales: list[str]
    model_name: str | None = None


class UltraFeedbackTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``aspect``: what the generations are rated on: ``helpfulness``, ``honesty``,
      ``instruction_following``, ``truthfulness`` or ``overall`` (default).
    """

    INPUT_DATA_TYPE = InstructionGenerations
    OUTPUT_DATA_TYPE = RatedGenerations

    def __init__(self, *, aspect: Aspect = "overall", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aspect = aspect
