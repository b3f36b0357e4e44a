"""Task and record types of the ``evol_complexity`` builder: each input instruction
rewritten to be harder by one operator."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.builders.weighted import draws, named_weights

# operator name -> what it does (its prompt is prompts/<name>.j2)
OPERATORS = {
    "add_constraints": "adds a requirement the answer must meet",
    "deepen": "asks for causes, trade-offs or exceptions",
    "concretize": "replaces a general idea with a specific case",
    "increase_reasoning": "makes the answer take several explicit steps",
}
MAX_ATTEMPTS = 4


@dataclass(kw_only=True)
class Instruction(DataPoint):
    """An input row: the instruction to make harder."""

    instruction: str


@dataclass(kw_only=True)
class EvolvedInstruction(DataPoint):
    """The original instruction, its harder rewrite and the operator that made it."""

    instruction: str
    evolved_instruction: str
    operator: str
    model_name: str | None = None


class EvolComplexityTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``operators``: the operators to draw from, a list of names (equal weights) or a mapping
      name -> weight (default: all four, equal weights).
    - ``attempts``: tries per instruction (1..4, default 2); a rejected rewrite is tried
      again with another operator.
    - ``min_overlap``: the share of the original's content words the rewrite must keep (0..1,
      default 0.5); below it the rewrite has drifted off the original's subject.
    """

    INPUT_DATA_TYPE = Instruction
    OUTPUT_DATA_TYPE = EvolvedInstruction

    def __init__(
        self,
        *,
        operators: list[str] | dict[str, float] | None = None,
        attempts: int = 2,
        min_overlap: float = 0.5,
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
        self.operator_weights = named_weights(self, operators, OPERATORS, "operators", "operator")

    def operators_for(self, row: DataPoint) -> list[str]:
        """The operators row ``row``'s tries use, in order: weighted draws, each unlike the
        ones before while any is left, the same for the same seed and row."""
        return draws(
            self.operator_weights, random.Random(f"{self.runner_config.seed}:{row.id}"), self.attempts
        )
