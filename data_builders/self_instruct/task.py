"""Task and record type of the ``self_instruct`` builder: new instructions written from
seed instructions, a description of the application and what makes a request good."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fms_dgt import DataPoint, GenerationTask

# used when the task.yaml gives no criteria
DEFAULT_CRITERIA = (
    "It is one self-contained request that makes sense without the examples.",
    "It asks for something the application is meant to do.",
    "It differs from the examples in topic and wording.",
)
MAX_INSTRUCTIONS = 20


@dataclass(kw_only=True)
class Instruction(DataPoint):
    """An instruction and, when the task answers it (``respond: true``), its response."""

    instruction: str
    response: str | None = None


class SelfInstructTask(GenerationTask):
    """task.yaml keys (besides the usual ones):

    - ``application_description``: what the instructions are for (default: the
      task_description).
    - ``criteria``: what makes a request good, one sentence each (default: DEFAULT_CRITERIA).
    - ``num_instructions``: instructions asked for in each call (1..20, default 5).
    - ``respond``: answer each new instruction with a second request (default false).
    """

    INPUT_DATA_TYPE = Instruction
    OUTPUT_DATA_TYPE = Instruction

    def __init__(
        self,
        *,
        application_description: str | None = None,
        criteria: list[str] | None = None,
        num_instructions: int = 5,
        respond: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= num_instructions <= MAX_INSTRUCTIONS:
            raise self.config_error(
                f"num_instructions must be between 1 and {MAX_INSTRUCTIONS}, got {num_instructions}",
                "num_instructions",
                hint="a small model keeps to a short list; 3 to 8 is typical",
            )
        if application_description is not None and not application_description.strip():
            raise self.config_error(
                "application_description is empty",
                "application_description",
                hint="describe what the instructions are for, or leave the key out to use task_description",
            )
        if criteria is not None:
            if not criteria:
                raise self.config_error(
                    "criteria is an empty list",
                    "criteria",
                    hint="list what makes a request good, or leave it out",
                )
            for i, criterion in enumerate(criteria):
                if not criterion.strip():
                    raise self.config_error(f"criterion {i} is empty", "criteria", i)
        self.application_description = (application_description or self.task_description).strip()
        self.criteria = [c.strip() for c in criteria] if criteria else list(DEFAULT_CRITERIA)
        self.num_instructions = num_instructions
        self.respond = respond
