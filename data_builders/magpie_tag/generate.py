"""The ``magpie_tag`` builder: every input row tagged the Magpie way (IBM fms-dgt's
``magpie`` transformation: its task files, which name ``magpie`` with a ``data:`` section,
run here unchanged).

Each row (``question``/``answer``, ``instruction``/``response`` or OpenAI ``messages``) gets
one structured-output request per tag family: the quality of the request (very poor ..
excellent, with an explanation), its difficulty (very easy .. very hard, with the user's
intent and the knowledge it needs), its task category (a fixed set of twelve) and a 1-5
judge score of the response (when the row has one). The record is the row, whole (``row``),
with ``magpie_tags``. An answer that breaks its schema is a rejection with the raw text; a
row whose tags miss the task's ``filter_criteria`` is a rejection naming the tag; near
duplicates are removed by the ``minhash_dedup`` postprocessor (or an ``embedding_dedup``
filter a task adds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, Field, ValidationError

from fms_dgt import PromptTransformer, Rejection, register_data_builder
from fms_dgt.builders.declarative import as_messages, source_hash
from fms_dgt.engines.types import Constraint, LMRequest, LMResult
from fms_dgt.formatters.base import Formatter
from fms_dgt.registry import register_formatter

from .task import TAG_KEYS, Category, Difficulty, MagpieTagTask, Quality, Row, Score

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS), undefined=jinja2.StrictUndefined, autoescape=False
)
TEMPLATE_HASH = source_hash(*(p.read_text() for p in sorted(_PROMPTS.glob("*.j2"))))


class InputQuality(BaseModel):
    explanation: str = Field(max_length=160)
    input_quality: Quality


class DifficultyTag(BaseModel):
    intent: str = Field(max_length=100)
    knowledge: str = Field(max_length=100)
    difficulty: Difficulty


class CategoryTag(BaseModel):
    primary_tag: Category
    other_tags: list[Category] = Field(default_factory=list, max_length=3)


class SampleQuality(BaseModel):
    explanation: str = Field(max_length=160)
    score: Score


# tag family -> the JSON the model answers with
ANSWERS: dict[str, type[BaseModel]] = {
    "input_quality": InputQuality,
    "difficulty": DifficultyTag,
    "task_category": CategoryTag,
    "sample_quality": SampleQuality,
}
TEMPLATES = {family: _ENV.get_template(f"{family}.j2") for family in ANSWERS}


def as_tags(answer: BaseModel) -> dict[str, Any]:
    """An answer's part of ``magpie_tags``."""
    if isinstance(answer, InputQuality):
        return {
            "input_quality": answer.input_quality,
            "input_quality_explanation": answer.explanation.strip(),
        }
    if isinstance(answer, DifficultyTag):
        return {
            "difficulty": answer.difficulty,
            "intent": answer.intent.strip(),
            "knowledge": answer.knowledge.strip(),
        }
    if isinstance(answer, CategoryTag):
        others = [c for c in dict.fromkeys(answer.other_tags) if c != answer.primary_tag]
        return {"task_category": answer.primary_tag, "other_task_categories": others}
    assert isinstance(answer, SampleQuality)
    return {"judge_quality_score": answer.score, "judge_quality_explanation": answer.explanation.strip()}


def transcript(row: Row) -> str | None:
    """A conversation's turns as ``Role: text`` lines (None for a single request)."""
    if row.messages is None:
        return None
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in row.messages)


@register_data_builder("magpie_tag")
class MagpieTag(PromptTransformer):
    TASK_TYPE = MagpieTagTask
    ENGINE = "llm1"
    task: MagpieTagTask

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    def families(self, row: Row) -> list[str]:
        """The tag families asked for ``row`` (no response: nothing to judge)."""
        return [f for f in self.task.tags if f != "sample_quality" or row.response is not None]

    def request(self, family: str, row: Row, chunk: int) -> LMRequest:
        text = TEMPLATES[family].render(
            query=row.instruction, response=row.response, transcript=transcript(row)
        )
        return LMRequest(
            messages=as_messages(text, self.SYSTEM),
            constraint=Constraint.from_model(ANSWERS[family]),
            keep_invalid=True,  # an answer that breaks the schema is kept, raw, in rejected
            metadata={"chunk": chunk, "input_id": row.id, "tag": family},
        )

    async def __call__(self, request_idx: int, rows: Sequence[Row]) -> list[Any]:
        done = await asyncio.gather(*(self.tag(request_idx, row) for row in rows))
        return [item for items in done for item in items]

    async def tag(self, chunk: int, row: Row) -> list[Any]:
        """The row's record, or a rejection (unparseable answer, or filtered out)."""
        families = self.families(row)
        if not families:
            return [
                Rejection("nothing to tag: the row has no response to judge", raw=row.row, block="magpie_tag")
            ]
        results: list[LMResult] = await asyncio.gather(
            *(self.engine.agenerate(self.request(f, row, chunk)) for f in families)
        )
        if not all(r.ok for r in results):
            return []  # the failed store has the request that failed
        tags: dict[str, Any] = dict.fromkeys(TAG_KEYS)
        unparsed: dict[str, str] = {}
        problems: list[str] = []
        for family, result in zip(families, results):
            text = result.texts[0] if result.texts else ""
            try:
                if result.invalid is not None:
                    raise ValueError(result.invalid)
                tags.update(as_tags(ANSWERS[family].model_validate((result.parsed or [None])[0])))
            except (ValueError, ValidationError) as exc:
                unparsed[family] = text
                problems.append(f"{family}: {str(exc).splitlines()[0]}")
        found = {"input_id": row.id, "instruction": row.instruction, "row": row.row}
        if unparsed:
            return [
                Rejection(
                    f"unparseable tag answer ({'; '.join(problems)})",
                    raw={**found, "answers": unparsed},
                    block="magpie_tag",
                )
            ]
        model = results[0].model if results else None
        record = {
            "instruction": row.instruction,
            "response": row.response,
            "messages": row.messages,
            "row": row.row,
            "magpie_tags": tags,
            "model_name": model,
        }
        reason = self.task.unmet(tags)
        if reason is not None:
            return [Rejection(reason, raw=record, block="magpie_filter")]
        tokens = {
            "prompt": sum(r.prompt_tokens for r in results),
            "completion": sum(r.completion_tokens for r in results),
        }
        record["lineage"] = {"tokens": tokens, "tags": families}
        return self.records(record, results[0], results[0].texts[0], input_id=row.id)


@register_formatter("magpie_row")
class MagpieRowFormatter(Formatter):
    """IBM fms-dgt's magpie output layout: the input row's own columns plus ``magpie_tags``."""

    def fields_read(self) -> dict[str, set[str]]:
        return {"type": {"row", "magpie_tags"}}

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        return {**record["row"], "magpie_tags": record["magpie_tags"]}
