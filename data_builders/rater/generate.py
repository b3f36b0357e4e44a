"""The ``rater`` builder: how hard each question/answer pair is.

Each row is one request (``prompts/rate.j2``) whose answer is constrained to the JSON of
``Rating``: the knowledge answering takes and a difficulty from a fixed scale (very easy,
easy, medium, hard, very hard). The record is the pair with ``ratings: {knowledge,
difficulty}`` and ``model_name``. An answer that is not JSON, has a difficulty off the
scale or names no knowledge is a rejection with the reason and the raw text.
IBM fms-dgt's task files for ``public/examples/qa_rater`` run on it unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, Field, ValidationError

from fms_dgt import LMResult, PromptTransformer, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash

from .task import DIFFICULTIES, QAPair, RaterTask

_TEMPLATE_TEXT = (Path(__file__).parent / "prompts" / "rate.j2").read_text()
_TEMPLATE = jinja2.Template(_TEMPLATE_TEXT, undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
TEMPLATE_HASH = source_hash(_TEMPLATE_TEXT)


class Rating(BaseModel):
    """What the model answers with."""

    knowledge: str = Field(min_length=1, max_length=300)  # fits in max_tokens
    difficulty: Literal[DIFFICULTIES]  # type: ignore[valid-type]


def read_rating(text: str) -> tuple[Rating | None, str | None]:
    """``(rating, None)``, or ``(None, why the answer cannot be used)``."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"unparseable answer: not JSON ({exc.msg})"
    try:
        rating = Rating.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"])) or "answer"
        return None, f"unusable answer: {where}: {err['msg'][0].lower()}{err['msg'][1:]}"
    if not rating.knowledge.strip():
        return None, "unusable answer: knowledge is empty"
    return rating, None


@register_data_builder("rater")
class Rater(PromptTransformer):
    TASK_TYPE = RaterTask
    OUTPUT = Rating
    KEEP_INVALID = True  # an answer off the schema is a rejection with its text
    task: RaterTask

    def prompt(self, row: QAPair) -> str:
        return _TEMPLATE.render(question=row.question, answer=row.answer)

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    def parse(self, answer: str, row: QAPair) -> Any:
        rating, reason = read_rating(answer)
        if rating is None:
            raw = {"input_id": row.id, "question": row.question, "answer": row.answer, "output": answer}
            return Rejection(reason or "unusable answer", raw=raw, block="rater")
        ratings = {"knowledge": rating.knowledge.strip(), "difficulty": rating.difficulty}
        return {"question": row.question, "answer": row.answer, "ratings": ratings}

    def records(self, produced: Any, result: LMResult, raw: Any, **lineage: Any) -> list[Any]:
        if isinstance(produced, dict):  # every record names the model that wrote it
            produced = {**produced, "model_name": result.model}
        return super().records(produced, result, raw, **lineage)
