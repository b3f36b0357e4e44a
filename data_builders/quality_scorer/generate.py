"""The ``quality_scorer`` builder: every response to an instruction scored for quality, in
one request per row (the Deita quality scorer: comparing the responses side by side gives
finer, more consistent scores than judging each alone).

The non-blank responses are numbered in the prompt (``prompts/score.j2``) and the answer is
constrained to JSON ``{"scores": [...]}`` with exactly one integer 1..``max_score`` per
response shown. The builder checks it (fms_dgt/builders/judging.py): an answer that is not
JSON, has another number of scores (count mismatch) or a score out of range is a rejection
with the raw text. Blank responses are not shown and get the score None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fms_dgt import register_data_builder
from fms_dgt.builders.judging import Judge, numbered, scores_problem, scores_schema

from .task import InstructionResponses, QualityScorerTask


class Scores(BaseModel):
    """What the model answers with (ranges and length are checked against the row)."""

    scores: list[int]


@register_data_builder("quality_scorer")
class QualityScorer(Judge):
    TASK_TYPE = QualityScorerTask
    OUTPUT = Scores
    PROMPTS = Path(__file__).parent / "prompts"
    task: QualityScorerTask

    def unjudgeable(self, row: InstructionResponses) -> str | None:
        return None if numbered(row.responses) else "no response to score: every response is blank"

    def prompt(self, row: InstructionResponses) -> str:
        return self.render(
            "score.j2",
            instruction=row.instruction,
            responses=numbered(row.responses),
            max_score=self.task.max_score,
        )

    def schema(self, row: InstructionResponses) -> dict[str, Any]:
        return scores_schema(len(numbered(row.responses)), 1, self.task.max_score)

    def parse(self, answer: Scores, row: InstructionResponses) -> Any:
        numbers = [number for number, _ in numbered(row.responses)]
        problem = scores_problem(answer.scores, numbers, 1, self.task.max_score, "response")
        if problem:
            return problem
        given = dict(zip(numbers, answer.scores))
        return {
            "instruction": row.instruction,
            "responses": row.responses,
            "scores": [given.get(i) for i in range(1, len(row.responses) + 1)],
        }
