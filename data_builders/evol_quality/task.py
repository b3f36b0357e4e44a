"""Task and record types of the ``evol_quality`` builder: each input response rewritten to
be better in one aspect, faithful to the instruction and to the original's content."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.builders.weighted import draws, named_weights

# aspect name -> what the rewrite improves (its prompt is prompts/<name>.j2)
ASPECTS = {
    "helpfulness": "adds what the user needs next: a tip, an example, a warning",
    "relevance": "opens with the direct answer and ties each point to the instruction",
    "depth": "explains the reasons behind the points",
    "creativity": "makes it vivid and engaging, still accurate",
    "details": "gives the points specific details: quantities, names, steps, examples",
}
MAX_ATTEMPTS = 4


@dataclass(kw_only=True)
class Answered(DataPoint):
    """An input row: an instruction and the response to improve."""

    instruction: str
    response: str


@dataclass(kw_only=True)
class EvolvedResponse(DataPoint):
    """The instruction, the original response, its better rewrite, the aspect it improves and
    ``faithfulness``: the share of the original's content words the rewrite kept."""

    instruction: str
    response: str
    evolved_response: str
    aspect: str
    faithfulness: float = 1.0
    model_name: str | None = None


class EvolQualityTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``aspects``: the aspects to draw from, a list of names (equal weights) or a mapping
      name -> weight (default: all five, equal weights).
    - ``attempts``: tries per response (1..4, default 2); a rejected rewrite is tried again
      with another aspect.
    - ``min_overlap``: the share of the original response's content words the rewrite must
      keep (0..1, default 0.6); below it the rewrite dropped the original's content.
    """

    INPUT_DATA_TYPE = Answered
    OUTPUT_DATA_TYPE = EvolvedResponse

    def __init__(
        self,
        *,
        aspects: list[str] | dict[str, float] | None = None,
        attempts: int = 2,
        min_overlap: float = 0.6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= attempts <= MAX_ATTEMPTS:
            raise self.config_error(
                f"attempts must be between 1 and {MAX_ATTEMPTS}, got {attempts}", "attempts"
            )
        if not 0.0 <= min_overlap <= 1.0:
            raise self.config_error(
                f"min_overlap is a share of words, between 0 and 1; got {min_overlap}", "min_overlap"
            )
        self.attempts = attempts
        self.min_overlap = min_overlap
        self.aspect_weights = named_weights(self, aspects, ASPECTS, "aspects", "aspect")

    def aspects_for(self, row: DataPoint) -> list[str]:
        """The aspects row ``row``'s tries use, in order: weighted draws, each unlike the
        ones before while any is left, the same for the same seed and row."""
        return draws(self.aspect_weights, random.Random(f"{self.runner_config.seed}:{row.id}"), self.attempts)
