"""The ``simple`` builder: show the model a few examples, ask for one more pair."""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2

from fms_dgt.builders.base import GenerationDataBuilder
from fms_dgt.engines import Constraint, Engine, LMRequest
from fms_dgt.registry import register_data_builder

from .task import InstructData, SimpleTask

_TEMPLATE_SOURCE = (Path(__file__).parent / "prompts" / "generate.j2").read_text()
_TEMPLATE = jinja2.Template(_TEMPLATE_SOURCE)
TEMPLATE_HASH = hashlib.sha1(_TEMPLATE_SOURCE.encode()).hexdigest()[:12]
PAIR_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 5},
        "answer": {"type": "string", "minLength": 1},
    },
    "required": ["question", "answer"],
}


@register_data_builder("simple")
class SimpleInstructDataBuilder(GenerationDataBuilder):
    """One request per call (``n`` samples if the engine's sampling sets it); each sample
    that parses becomes a candidate record. Filters and dedup are applied by the runtime."""

    TASK_TYPE = SimpleTask
    llm1: Engine

    async def __call__(self, request_idx: int, seed_data: list[InstructData]) -> list[InstructData]:
        prompt = _TEMPLATE.render(task_description=self.task.task_description, examples=seed_data)
        request = LMRequest(
            messages=[{"role": "user", "content": prompt}],
            params=self.llm1.default_params,
            constraint=Constraint(json_schema=PAIR_SCHEMA),
            metadata={"request_idx": request_idx},
        )
        result = await self.llm1.agenerate(request)
        if not result.ok:
            return []  # already recorded as a failed request by the engine
        records = []
        for obj in result.parsed or []:
            records.append(
                self.task.instantiate_output_example(
                    question=obj["question"].strip(),
                    answer=obj["answer"].strip(),
                    lineage={
                        "model": result.model,
                        "engine": self.llm1.name,
                        "prompt_template": TEMPLATE_HASH,
                        "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
                    },
                )
            )
        return records
