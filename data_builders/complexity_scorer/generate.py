"""The ``complexity_scorer`` builder: the instructions of a row scored for complexity side
by side, in one request (the Deita complexity scorer: an instruction and its evolved
versions compared with each other get finer, more consistent scores than each alone).

The non-blank instructions are numbered in the prompt (``prompts/score.j2``) and the answer
is constrained to JSON ``{"scores": [...]}`` with exactly one integer 1..``max_score`` per
instruction shown. The builder checks it (fms_dgt/builders/judging.py): an answer that is
not JSON, has another number of scores (count mismatch) or a score out of range is a
rejection with the raw text. Blank instructions are not shown and get the score None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fms_dgt import register_data_builder
from fms_dgt.builders.judging import Judge, numbered, scores_problem, scores_schema

from .task import ComplexityScorerTask, Instructions


class Scores(BaseModel):
    """What the model answers with (ranges and length are checked against the row)."""

    scores: list[int]


@register_data_builder("complexity_scorer")
class ComplexityScorer(Judge):
    TASK_TYPE = ComplexityScorerTask
    OUTPUT = Scores
    PROMPTS = Path(__file__).parent / "prompts"
    task: ComplexityScorerTask

    def unjudgeable(self, row: Instructions) -> str | None:
        return None if numbered(row.instructions) else "no instruction to score: every instruction is blank"

    def prompt(self, row: Instructions) -> str:
        return self.render("score.j2", instructions=numbered(row.instructions), max_score=self.task.max_score)

    def schema(self, row: Instructions) -> dict[str, Any]:
        return scores_schema(len(numbered(row.instructions)), 1, self.task.max_score)

    def parse(self, answer: Scores, row: Instructions) -> Any:
        numbers = [number for number, _ in numbered(row.instructions)]
        problem = scores_problem(answer.scores, numbers, 1, self.task.max_score, "instruction")
        if problem:
            return problem
        given = dict(zip(numbers, answer.scores))
        return {
            "instructions": row.instructions,
            "scores": [given.get(i) for i in range(1, len(row.instructions) + 1)],
        }
