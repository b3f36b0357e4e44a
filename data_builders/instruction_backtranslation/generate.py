"""The ``instruction_backtranslation`` builder: each generation rated 1..5 for how well it
answers its instruction as an AI assistant would (the self-curation step of instruction
backtranslation, Humpback), with a short reason.

One request per row (``prompts/rate.j2``), constrained to JSON ``{"reason", "score"}`` with
the score an integer 1..5. The answer is checked by the builder (see
fms_dgt/builders/judging.py): one that is not JSON or has a score out of range is a
rejection with the raw text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from fms_dgt import register_data_builder
from fms_dgt.builders.judging import Judge

from .task import MAX_SCORE, MIN_SCORE, InstructionAnswer, InstructionBacktranslationTask


class Rating(BaseModel):
    """What the model answers with (reason first: it writes its grounds, then the score)."""

    reason: str = Field(max_length=400)
    score: int = Field(ge=MIN_SCORE, le=MAX_SCORE)


@register_data_builder("instruction_backtranslation")
class InstructionBacktranslation(Judge):
    TASK_TYPE = InstructionBacktranslationTask
    OUTPUT = Rating
    PROMPTS = Path(__file__).parent / "prompts"
    task: InstructionBacktranslationTask

    def prompt(self, row: InstructionAnswer) -> str:
        return self.render("rate.j2", instruction=row.instruction, generation=row.generation)

    def parse(self, answer: Rating, row: InstructionAnswer) -> Any:
        return {
            "instruction": row.instruction,
            "generation": row.generation,
            "score": answer.score,
            "reason": answer.reason.strip(),
        }
