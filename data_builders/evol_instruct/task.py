"""Task and record types of the ``evol_instruct`` builder: instructions evolved over
several generations by rewriting operators, from seed instructions or from topics."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from fms_dgt import DataPoint
from fms_dgt.builders.topics import TopicsTask
from fms_dgt.builders.weighted import draw_new, named_weights

# operator name -> what it does (its prompt is prompts/<name>.j2)
OPERATORS = {
    "add_constraints": "adds a requirement the answer must meet",
    "deepen": "asks for more depth: reasons, trade-offs, edge cases",
    "concretize": "replaces general ideas with specific ones",
    "increase_reasoning": "makes the answer take several explicit steps",
    "breadth": "writes a new instruction on a rarer topic of the same domain",
}
MAX_GENERATIONS = 10
MAX_STEP_ATTEMPTS = 5


@dataclass(kw_only=True)
class SeedInstruction(DataPoint):
    """A seed: the instruction a chain of evolutions starts from."""

    instruction: str


@dataclass(kw_only=True)
class EvolvedInstruction(DataPoint):
    """The last instruction of a chain, the chain itself and, with ``respond: true``, the
    answer. ``evolution[0]`` is where the chain started (operator ``seed`` or
    ``from_topic``); each later step holds its generation, operator and instruction."""

    instruction: str
    evolution: list[dict[str, Any]] = field(default_factory=list)
    topic: str | None = None
    response: str | None = None


class EvolInstructTask(TopicsTask):
    """task.yaml keys (besides the usual ones):

    - ``generations``: evolution steps per chain (1..10, default 3).
    - ``operators``: which operators to draw from: a list of names (equal weights) or a
      mapping name -> weight (default: all five, equal weights).
    - ``topics``: start each chain from a topic instead of a seed (a first instruction is
      written for the topic, then evolved); or a sampler named ``topic`` under ``samplers:``.
      Seeds are optional then (shown as examples of style).
    - ``step_attempts``: tries per generation before a chain is given up (1..5, default 2);
      each failed try is a rejection with its reason, and the next try uses another operator.
    - ``keep_intermediate``: every generation of a chain is a record, not only the last.
    - ``respond``: answer each kept instruction with a second request (default false).
    """

    NO_SEEDS = "evol_instruct needs seed instructions to evolve, or topics to start from"
    NO_SEEDS_HINT = (
        "add seed_examples: [{instruction: ...}], seed_datastore: {data_path: ...} or topics: [...]"
    )
    INPUT_DATA_TYPE = SeedInstruction
    OUTPUT_DATA_TYPE = EvolvedInstruction

    def __init__(
        self,
        *,
        generations: int = 3,
        operators: list[str] | dict[str, float] | None = None,
        topics: list[str] | None = None,
        step_attempts: int = 2,
        keep_intermediate: bool = False,
        respond: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= generations <= MAX_GENERATIONS:
            raise self.config_error(
                f"generations must be between 1 and {MAX_GENERATIONS}, got {generations}", "generations"
            )
        if not 1 <= step_attempts <= MAX_STEP_ATTEMPTS:
            raise self.config_error(
                f"step_attempts must be between 1 and {MAX_STEP_ATTEMPTS}, got {step_attempts}",
                "step_attempts",
            )
        self.generations = generations
        self.step_attempts = step_attempts
        self.keep_intermediate = keep_intermediate
        self.respond = respond
        self.operator_weights = named_weights(self, operators, OPERATORS, "operators", "operator")
        self.topics = self.read_topics(topics)

    # ---- what the builder asks ------------------------------------------------------------
    def pick_operator(self, rng: random.Random, tried: list[str]) -> str:
        """A weighted draw, preferring operators not tried yet for this step."""
        return draw_new(self.operator_weights, rng, tried)
