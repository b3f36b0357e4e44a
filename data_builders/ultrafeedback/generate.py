"""The ``ultrafeedback`` builder: every generation for an instruction rated on one aspect
(``aspect``: helpfulness, honesty, instruction_following, truthfulness, overall), 1 to 5
with a one-sentence rationale, all generations in one request (UltraFeedback).

The prompt is ``prompts/<aspect>.j2`` (the aspect's own 1..5 scale over ``_rate.j2``); the
answer is constrained to JSON ``{"evaluations": [{"rationale", "rating"}, ...]}`` with
exactly one evaluation per generation. The builder checks it (fms_dgt/builders/judging.py):
an answer that is not JSON, a rating out of range or another number of evaluations (count
mismatch) is a rejection with the raw text. The record has parallel lists ``ratings`` and
``rationales``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from fms_dgt import register_data_builder
from fms_dgt.builders.judging import Judge, counted

from .task import MAX_RATING, MIN_RATING, InstructionGenerations, UltraFeedbackTask


class Evaluation(BaseModel):
    rationale: str = Field(max_length=300)
    rating: int = Field(ge=MIN_RATING, le=MAX_RATING)


class Evaluations(BaseModel):
    """What the model answers with: one evaluation per generation, in order."""

    evaluations: list[Evaluation]


@register_data_builder("ultrafeedback")
class UltraFeedback(Judge):
    TASK_TYPE = UltraFeedbackTask
    OUTPUT = Evaluations
    PROMPTS = Path(__file__).parent / "prompts"
    task: UltraFeedbackTask

    def prompt(self, row: InstructionGenerations) -> str:
        return self.render(
            f"{self.task.aspect}.j2",
            instruction=row.instruction,
            generations=list(enumerate(row.generations, 1)),
        )

    def schema(self, row: InstructionGenerations) -> dict[str, Any]:
        schema = Evaluations.model_json_schema()
        count = len(row.generations)
        schema["properties"]["evaluations"].update(minItems=count, maxItems=count)
        return schema

    def parse(self, answer: Evaluations, row: InstructionGenerations) -> Any:
        given, expected = len(answer.evaluations), len(row.generations)
        if given != expected:
            return f"count mismatch: {counted(given, 'evaluation')} for {counted(expected, 'generation')}"
        return {
            "instruction": row.instruction,
            "generations": row.generations,
            "aspect": self.task.aspect,
            "ratings": [e.rating for e in answer.evaluations],
            "rationales": [e.rationale.strip() for e in answer.evaluations],
        }
