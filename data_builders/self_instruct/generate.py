"""The ``self_instruct`` builder: new instructions from seed instructions, a description of
the application and criteria for good requests (Self-Instruct, Wang et al. 2022).

Each call shows the model the in-context instructions (seeds, and accepted ones when
``machine_batch_size`` > 0) and asks for ``num_instructions`` new ones as a JSON list. Each
becomes a record; one that is empty, copies the prompt's own text, loops or repeats an
earlier one of the same answer is rejected here with that reason, and the builder's
filters reject duplicates of the seeds and of everything accepted (exact and ROUGE-L, the
classic 0.7). With ``respond: true`` every instruction the filters would keep
is answered by a second request (the ``responder`` engine block), giving
instruction/response pairs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from fms_dgt import PromptBuilder, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash
from fms_dgt.builders.responding import Responder
from fms_dgt.engines.types import Constraint, LMResult
from fms_dgt.metrics.rewrites import echoes, loops, trigrams

from .task import Instruction, SelfInstructTask

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS), undefined=jinja2.StrictUndefined, autoescape=False
)
GENERATE = _ENV.get_template("generate.j2")
RESPOND_SYSTEM = (_PROMPTS / "respond.j2").read_text().strip()
TEMPLATE_HASH = source_hash((_PROMPTS / "generate.j2").read_text(), RESPOND_SYSTEM)
MIN_CHARS, MAX_CHARS = 10, 400  # of one instruction in the JSON the model must answer with
# a list marker or quotes a model puts around an item ("1. ...", "- ...", '"..."')
_MARKER = re.compile(r"^\s*(?:\d+\s*[.):]|[-*\u2022])\s+")


def clean(text: str) -> str:
    return _MARKER.sub("", text.strip()).strip().strip("\"'").strip()


def problem(text: str, frame: set[tuple[str, ...]]) -> str | None:
    """Why a new instruction cannot be used (None if it can)."""
    if not any(ch.isalpha() for ch in text):
        return "empty instruction"
    if echoes(text, frame):
        return "the instruction copies the prompt's own text"
    if loops(text) >= 3:
        return "repeats itself"
    return None


@register_data_builder("self_instruct")
class SelfInstruct(Responder, PromptBuilder):
    TASK_TYPE = SelfInstructTask
    ENGINE = "llm1"
    task: SelfInstructTask

    @property
    def constraint(self) -> Constraint:
        n = self.task.num_instructions
        item = {"type": "string", "minLength": MIN_CHARS, "maxLength": MAX_CHARS}
        array = {"type": "array", "items": item, "minItems": n, "maxItems": n}
        return Constraint(
            json_schema={
                "type": "object",
                "properties": {"instructions": array},
                "required": ["instructions"],
            }
        )

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    def prompt(self, examples: Sequence[Any], samples: dict[str, Any]) -> str:
        task = self.task
        return GENERATE.render(
            application_description=task.application_description,
            criteria=task.criteria,
            examples=examples,
            count=task.num_instructions,
        )

    def answers(self, result: LMResult) -> list[Any]:
        return list(result.parsed or [])

    def parse(self, answer: Any, examples: Sequence[Any], samples: dict[str, Any]) -> list[Any]:
        frame = trigrams(self.prompt([], samples))  # the prompt without its examples
        lineage = {
            "seed_ids": [e.id for e in examples if e.is_seed],
            "synthetic_ids": [e.id for e in examples if not e.is_seed],
        }
        out: list[Any] = []
        seen: set[str] = set()
        for raw in answer["instructions"]:
            text = clean(raw)
            reason = problem(text, frame) or (
                "the same instruction twice in one answer" if text in seen else None
            )
            seen.add(text)
            if reason is not None:
                out.append(Rejection(reason, raw=raw, block="self_instruct"))
            else:
                out.append(self.task.instantiate_output_example(instruction=text, lineage=dict(lineage)))
        return out

    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        out = await super().__call__(request_idx, seed_data)
        return await self.respond(out, Instruction, RESPOND_SYSTEM) if self.task.respond else out
