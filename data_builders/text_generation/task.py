"""Task and record types of the ``text_generation`` builder: an answer (or several) to each
input instruction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fms_dgt import DataPoint, TransformationTask

MAX_GENERATIONS = 16


@dataclass(kw_only=True)
class Instruction(DataPoint):
    """An input row: the instruction and, optionally, the system prompt for this row."""

    instruction: str
    system_prompt: str | None = None


@dataclass(kw_only=True)
class Generation(DataPoint):
    """One answer: ``generation_index`` numbers the answers of one row (0 .. n-1);
    ``system_prompt`` is the one the request used (the row's, else the task's)."""

    instruction: str
    generation: str
    generation_index: int = 0
    system_prompt: str | None = None
    model_name: str | None = None


class TextGenerationTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``num_generations``: answers per instruction, sampled in one request (1..16, default 1).
    - ``system_prompt``: the system message of rows without a ``system_prompt`` of their own.
    """

    INPUT_DATA_TYPE = Instruction
    OUTPUT_DATA_TYPE = Generation

    def __init__(self, *, num_generations: int = 1, system_prompt: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 1 <= num_generations <= MAX_GENERATIONS:
            raise self.config_error(
                f"num_generations must be between 1 and {MAX_GENERATIONS}, got {num_generations}",
                "num_generations",
            )
        if system_prompt is not None and not system_prompt.strip():
            raise self.config_error(
                "system_prompt is empty", "system_prompt", hint="write one, or leave the key out"
            )
        self.num_generations = num_generations
        self.system_prompt = system_prompt
