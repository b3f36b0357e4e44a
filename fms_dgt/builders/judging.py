"""Judging transformations: a model reads each input row and answers with a verdict of a
fixed shape (a score in a range, a label from a set, one rating per item of a list).

A judge builder sets ``OUTPUT`` (a pydantic model: its fields' types and bounds are the
verdict's contract) and ``PROMPTS`` (its folder of Jinja ``.j2`` templates), and writes
``prompt(row)`` and ``parse(verdict, row)``::

    class Rating(BaseModel):
        reason: str = Field(max_length=300)
        score: int = Field(ge=1, le=5)

    @register_data_builder("rate")
    class Rate(Judge):
        TASK_TYPE = RateTask
        OUTPUT = Rating
        PROMPTS = Path(__file__).parent / "prompts"

        def prompt(self, row):
            return self.render("rate.j2", instruction=row.instruction, response=row.response)

        def parse(self, verdict, row):
            return {"instruction": row.instruction, "score": verdict.score, "reason": verdict.reason}

The request is constrained to ``schema(row)`` (``OUTPUT``'s JSON schema; a builder may
narrow it to the row, e.g. pin a list's length to the number of items judged), but the
answer comes back even when it breaks it (``keep_invalid``) and is judged here: one that is not
JSON, does not fit ``OUTPUT`` (a score out of range, a label outside the set) or that
``parse`` refuses (a count that does not match the row) becomes a ``Rejection`` with the
reason, the row's fields and the raw answer, kept in ``rejected``, without another request.
A small model's answer cut at ``max_tokens`` is then one rejection, not three requests and
a failed record. Every record names the model that wrote it (``model_name``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import jinja2
from pydantic import BaseModel, ValidationError

from fms_dgt.builders.declarative import PromptTransformer, Rejection, as_messages, source_hash
from fms_dgt.datapoint import DataPoint
from fms_dgt.engines.types import Constraint, LMRequest, LMResult


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid_reason(error: ValidationError) -> str:
    """Why an answer does not fit the verdict's model, in one line."""
    problems = error.errors(include_url=False)
    if any(p["type"] == "json_invalid" for p in problems):
        return f"unparseable answer: {problems[0]['msg']}"
    parts = []
    for p in problems[:3]:
        where = ".".join(str(x) for x in p["loc"]) or "answer"
        got = "" if p["type"] == "missing" else f" = {short(repr(p['input']))}"
        parts.append(f"{where}{got}: {p['msg']}")
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "invalid answer: " + "; ".join(parts) + more


def texts_problem(value: Any, name: str) -> str | None:
    """Why ``value`` (an input field) is not a non-empty list of texts, or None."""
    if not isinstance(value, list) or not value:
        return f"{name} must be a non-empty list of texts, got {type(value).__name__}"
    for i, item in enumerate(value):
        if not isinstance(item, str):
            return f"{name}[{i}] must be a text, got {type(item).__name__}"
    return None


def numbered(texts: list[str]) -> list[tuple[int, str]]:
    """The non-blank ``texts`` (stripped) with their 1-based positions: what a judge of
    several items shows the model (a blank item is not judged)."""
    return [(i, text.strip()) for i, text in enumerate(texts, 1) if text.strip()]


def scores_schema(count: int, low: int, high: int) -> dict[str, Any]:
    """``{"scores": [...]}`` with exactly ``count`` integers ``low..high``."""
    score = {"type": "integer", "minimum": low, "maximum": high}
    return {
        "type": "object",
        "properties": {"scores": {"type": "array", "items": score, "minItems": count, "maxItems": count}},
        "required": ["scores"],
        "additionalProperties": False,
    }


def counted(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def scores_problem(scores: list[int], numbers: list[int], low: int, high: int, item: str) -> str | None:
    """Why ``scores`` are not one score in ``low..high`` for each of the ``item``s numbered
    ``numbers`` (1-based positions in the row), or None."""
    if len(scores) != len(numbers):
        return f"count mismatch: {counted(len(scores), 'score')} for {counted(len(numbers), item)}"
    for number, score in zip(numbers, scores):
        if not low <= score <= high:
            return f"score {score} of {item} {number} is out of range {low}..{high}"
    return None


class Judge(PromptTransformer):
    """Base of the judging builders: ``prompt(row)``, ``parse(verdict, row)`` and, where
    the constraint depends on the row, ``schema(row)``; see the module docstring."""

    OUTPUT: ClassVar[type[BaseModel]]
    PROMPTS: ClassVar[Path]

    @classmethod
    @functools.cache
    def _env(cls) -> jinja2.Environment:
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(cls.PROMPTS),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, template: str, **context: Any) -> str:
        """The template ``template`` of ``PROMPTS`` rendered with ``context``."""
        return self._env().get_template(template).render(**context).strip()

    @classmethod
    @functools.cache
    def _templates_hash(cls) -> str:
        return source_hash(*(p.read_text() for p in sorted(cls.PROMPTS.glob("*.j2"))))

    def prompt_hash(self) -> str:
        return self._templates_hash()

    def output_model(self) -> type[BaseModel]:
        """The verdict's model: ``OUTPUT`` (a builder whose verdict depends on the task,
        such as a mode, returns another)."""
        return self.OUTPUT

    def schema(self, row: Any) -> dict[str, Any]:
        """The JSON schema the model's answer about ``row`` is constrained to."""
        return _schema(self.output_model())

    def unjudgeable(self, row: Any) -> str | None:
        """Why ``row`` cannot be judged at all (rejected without a request), or None."""
        return None

    def verdict(self, text: str) -> BaseModel | str:
        """``text`` as an instance of the verdict's model, or why it is none."""
        try:
            return self.output_model().model_validate_json(text)
        except ValidationError as exc:
            return invalid_reason(exc)

    def rejection(self, reason: str, row: DataPoint, output: str | None) -> Rejection:
        raw = {"input_id": row.id, **row.user_fields()}
        if output is not None:
            raw["output"] = output
        return Rejection(reason, raw=raw, block=self.task.data_builder)

    async def __call__(self, request_idx: int, rows: Sequence[Any]) -> list[Any]:
        done = await asyncio.gather(*(self.judge(request_idx, row) for row in rows))
        return [item for items in done for item in items]

    async def judge(self, chunk: int, row: Any) -> list[Any]:
        """The records (or rejections) of one row: one request, a verdict per sample."""
        reason = self.unjudgeable(row)
        if reason is not None:
            return [self.rejection(reason, row, None)]
        request = LMRequest(
            messages=as_messages(self.prompt(row), self.SYSTEM),
            constraint=Constraint(json_schema=self.schema(row)),
            keep_invalid=True,
            metadata={"chunk": chunk, "input_id": row.id},
        )
        result = await self.engine.agenerate(request)
        if not result.ok:
            return []  # recorded as a failed request by the engine
        out: list[Any] = []
        for text in result.texts:
            verdict = self.verdict(text)
            produced = verdict if isinstance(verdict, str) else self.parse(verdict, row)
            out += self.outcome(produced, row, result, text)
        return out

    def outcome(self, produced: Any, row: Any, result: LMResult, text: str) -> list[Any]:
        """``parse``'s answer (or the reason there is none) as records or a rejection."""
        if isinstance(produced, str):
            produced = self.rejection(produced, row, text)
        elif isinstance(produced, Rejection) and produced.raw is None:
            produced = self.rejection(produced.reason, row, text)
        elif isinstance(produced, dict):
            produced = {**produced, "model_name": result.model}
        return self.records(produced, result, text, input_id=row.id)

    def parse(self, answer: Any, row: Any) -> Any:
        """Default: the row's fields and the verdict's."""
        return {**row.user_fields(), **answer.model_dump()}


__all__ = [
    "Judge",
    "counted",
    "invalid_reason",
    "numbered",
    "scores_problem",
    "scores_schema",
    "texts_problem",
]
