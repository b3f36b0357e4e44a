"""The ``answer_questions`` transformation builder: one chat request per input row, all
rows of a chunk sent concurrently."""

from __future__ import annotations

import asyncio
from pathlib import Path

import jinja2

from fms_dgt.builders.base import TransformationDataBuilder
from fms_dgt.engines import Engine, LMRequest
from fms_dgt.registry import register_data_builder

from .task import AnsweredQuestion, AnswerQuestionsTask, Question

_TEMPLATE = jinja2.Template((Path(__file__).parent / "prompts" / "answer.j2").read_text())


@register_data_builder("answer_questions")
class AnswerQuestionsBuilder(TransformationDataBuilder):
    TASK_TYPE = AnswerQuestionsTask
    llm1: Engine

    async def __call__(self, request_idx: int, rows: list[Question]) -> list[AnsweredQuestion]:
        requests = [
            LMRequest(
                messages=[{"role": "user", "content": _TEMPLATE.render(question=row.question)}],
                metadata={"input_id": row.id},
            )
            for row in rows
        ]
        results = await asyncio.gather(*(self.llm1.agenerate(r) for r in requests))
        out = []
        for row, result in zip(rows, results):
            if result.ok:
                out.append(
                    self.task.instantiate_output_example(
                        question=row.question,
                        answer=result.text.strip(),
                        lineage={"input_id": row.id, "model": result.model, "engine": self.llm1.name},
                    )
                )
        return out
