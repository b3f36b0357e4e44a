"""Task and record types of the ``preference`` builder: chosen/rejected response pairs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.registry import did_you_mean

MAX_RESPONSES = 8
ON_TIE = ("reject", "first")
DEFAULT_RUBRIC = "Does the response follow the instruction and give a correct, helpful and clear answer?"


@dataclass(kw_only=True)
class Instruction(DataPoint):
    """An input row: the instruction to answer."""

    instruction: str


@dataclass(kw_only=True)
class PreferencePair(DataPoint):
    """The best and the worst of the row's responses by the judge's scores.

    ``responses`` are the distinct responses judged, ``scores`` theirs (absolute: 1 to 5;
    relative: the comparisons each response won); ``model_name`` wrote the responses,
    ``judge_model`` scored them."""

    instruction: str
    chosen: str
    rejected: str
    chosen_score: int
    rejected_score: int
    responses: list[str] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)
    model_name: str | None = None
    judge_model: str | None = None


class PreferenceTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``num_responses``: responses sampled per instruction, in one request (2..8, default 2).
    - ``judge_mode``: ``absolute`` (each response scored 1..5 on the rubric; default) or
      ``relative`` (each pair of responses compared; a response's score is its wins).
    - ``rubric``: the question the judge answers about a response.
    - ``on_tie``: when no response scores above another: ``reject`` (default) or ``first``
      (keep the pair of the first two responses).
    """

    INPUT_DATA_TYPE = Instruction
    OUTPUT_DATA_TYPE = PreferencePair

    def __init__(
        self,
        *,
        num_responses: int = 2,
        judge_mode: Literal["absolute", "relative"] = "absolute",
        rubric: str = DEFAULT_RUBRIC,
        on_tie: str = "reject",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_responses < 2:
            raise self.config_error(
                f"num_responses must be at least 2 (a preference pair needs two responses), got {num_responses}",
                "num_responses",
            )
        if num_responses > MAX_RESPONSES:
            raise self.config_error(
                f"num_responses must be at most {MAX_RESPONSES}, got {num_responses}", "num_responses"
            )
        if on_tie not in ON_TIE:
            close = did_you_mean(on_tie, ON_TIE)
            raise self.config_error(
                f"on_tie must be one of {', '.join(ON_TIE)}; got '{on_tie}'",
                "on_tie",
                hint=close or "reject: drop the row (default); first: keep the first two responses",
            )
        if not rubric.strip():
            raise self.config_error("rubric is empty", "rubric", hint="write one, or leave the key out")
        self.num_responses = num_responses
        self.judge_mode = judge_mode
        self.rubric = rubric.strip()
        self.on_tie = on_tie

    def swapped(self, row: DataPoint, pair: tuple[int, int]) -> bool:
        """Whether the relative judge sees ``pair``'s second response as A (against position
        bias), the same for the same seed, row and pair."""
        return random.Random(f"{self.runner_config.seed}:{row.id}:{pair}").random() < 0.5
