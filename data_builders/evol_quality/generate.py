"""The ``evol_quality`` builder: each input response rewritten to be better in one aspect.

For each row an aspect is drawn (``aspects:``, weighted; the same for the same seed and
row) and the model rewrites the response with it (``prompts/<aspect>.j2``, JSON
``{"response": ...}``), told to stay faithful to the instruction and keep every point of
the original. A rewrite that is empty, identical, an echo of the prompt, talks about the
rewriting or loops is a rejection with that reason; so is one that drops the original's
content (keeps less than ``min_overlap`` of its content words, or loses a number it gives:
see faithfulness.py). The row is then tried again with another aspect, up to ``attempts``
tries. The first usable rewrite is the row's record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, Field

from fms_dgt import PromptTransformer, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash
from fms_dgt.metrics.rewrites import trigrams

from .faithfulness import unfaithful, unusable
from .task import ASPECTS, Answered, EvolQualityTask

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS), undefined=jinja2.StrictUndefined, autoescape=False
)
TEMPLATES = {name: _ENV.get_template(f"{name}.j2") for name in ASPECTS}
TEMPLATE_HASH = source_hash(*(p.read_text() for p in sorted(_PROMPTS.glob("*.j2"))))


class Improved(BaseModel):
    """What the model answers with."""

    response: str = Field(min_length=1, max_length=4000)


@register_data_builder("evol_quality")
class EvolQuality(PromptTransformer):
    TASK_TYPE = EvolQualityTask
    OUTPUT = Improved
    task: EvolQualityTask

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    async def __call__(self, request_idx: int, rows: Sequence[Answered]) -> list[Any]:
        done = await asyncio.gather(*(self.improve(request_idx, row) for row in rows))
        return [item for items in done for item in items]

    async def improve(self, chunk: int, row: Answered) -> list[Any]:
        """The row's rejected tries and, if one try is usable, its record."""
        out: list[Any] = []
        tokens = {"prompt": 0, "completion": 0}
        for attempt, aspect in enumerate(self.task.aspects_for(row), 1):
            template = TEMPLATES[aspect]
            prompt = template.render(instruction=row.instruction, response=row.response)
            result = await self.ask(prompt, {"chunk": chunk, "input_id": row.id, "aspect": aspect})
            if not result.ok:
                return out  # the failed store has it
            tokens["prompt"] += result.prompt_tokens
            tokens["completion"] += result.completion_tokens
            raw = self.answers(result)[0].response
            text = raw.strip()
            # the prompt's own words, without the instruction and response it was given
            frame = trigrams(template.render(instruction="", response="")) - trigrams(
                f"{row.instruction}\n{row.response}"
            )
            share, reason = unfaithful(text, row.response, self.task.min_overlap)
            reason = unusable(text, row.response, frame) or reason
            if reason is not None:
                found = {"input_id": row.id, "instruction": row.instruction, "response": row.response}
                out.append(
                    Rejection(
                        reason,
                        raw={
                            **found,
                            "aspect": aspect,
                            "attempt": attempt,
                            "faithfulness": share,
                            "output": raw,
                        },
                        block="evol_quality",
                    )
                )
                continue
            record = {
                "instruction": row.instruction,
                "response": row.response,
                "evolved_response": text,
                "aspect": aspect,
                "faithfulness": round(share, 3),
                "model_name": result.model,
                "lineage": {"tokens": dict(tokens), "attempts": attempt},
            }
            out += self.records(record, result, raw, input_id=row.id)
            break
        return out
