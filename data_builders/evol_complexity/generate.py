"""The ``evol_complexity`` builder: each input instruction rewritten to be harder.

For each row an operator is drawn (``operators:``, weighted; the same for the same seed and
row) and the model rewrites the instruction with it (``prompts/<operator>.j2``, JSON
``{"instruction": ...}``). A rewrite that is empty, identical, an echo of the prompt, talks
about the rewriting, loops, drifts off the original's content words (``min_overlap``) or is
shorter than the original is a rejection with that reason, and the row is tried again with
another operator, up to ``attempts`` tries. The first usable rewrite is the row's record:
``instruction``, ``evolved_instruction``, ``operator``, ``model_name``.
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

from .checks import unusable
from .task import OPERATORS, EvolComplexityTask, Instruction

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS), undefined=jinja2.StrictUndefined, autoescape=False
)
TEMPLATES = {name: _ENV.get_template(f"{name}.j2") for name in OPERATORS}
TEMPLATE_HASH = source_hash(*(p.read_text() for p in sorted(_PROMPTS.glob("*.j2"))))


class Rewrite(BaseModel):
    """What the model answers with."""

    instruction: str = Field(min_length=10, max_length=800)


@register_data_builder("evol_complexity")
class EvolComplexity(PromptTransformer):
    TASK_TYPE = EvolComplexityTask
    OUTPUT = Rewrite
    task: EvolComplexityTask

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    async def __call__(self, request_idx: int, rows: Sequence[Instruction]) -> list[Any]:
        done = await asyncio.gather(*(self.evolve(request_idx, row) for row in rows))
        return [item for items in done for item in items]

    async def evolve(self, chunk: int, row: Instruction) -> list[Any]:
        """The row's rejected tries and, if one try is usable, its record."""
        out: list[Any] = []
        tokens = {"prompt": 0, "completion": 0}
        for attempt, operator in enumerate(self.task.operators_for(row), 1):
            template = TEMPLATES[operator]
            prompt = template.render(instruction=row.instruction)
            result = await self.ask(prompt, {"chunk": chunk, "input_id": row.id, "operator": operator})
            if not result.ok:
                return out  # the failed store has it
            tokens["prompt"] += result.prompt_tokens
            tokens["completion"] += result.completion_tokens
            raw = self.answers(result)[0].instruction
            text = raw.strip().strip("\"'").strip()
            frame = trigrams(template.render(instruction=""))
            reason = unusable(text, row.instruction, frame, self.task.min_overlap)
            if reason is not None:
                found = {"input_id": row.id, "instruction": row.instruction, "operator": operator}
                out.append(
                    Rejection(
                        reason, raw={**found, "attempt": attempt, "output": raw}, block="evol_complexity"
                    )
                )
                continue
            record = {
                "instruction": row.instruction,
                "evolved_instruction": text,
                "operator": operator,
                "model_name": result.model,
                "lineage": {"tokens": dict(tokens), "attempts": attempt},
            }
            out += self.records(record, result, raw, input_id=row.id)
            break
        return out
