"""The ``text_generation`` builder: answer each input instruction.

Each row is one chat request: the row's ``system_prompt`` (else the task's) as the system
message and the instruction (``prompts/user.j2``) as the user message. ``num_generations``
answers come from that one request (sampling ``n``), each a record numbered by
``generation_index``. An empty answer is a rejection; a failed request is in ``failed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from fms_dgt import LMRequest, LMResult, PromptTransformer, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash

from .task import Instruction, TextGenerationTask

_TEMPLATE_TEXT = (Path(__file__).parent / "prompts" / "user.j2").read_text()
_TEMPLATE = jinja2.Template(_TEMPLATE_TEXT, undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
TEMPLATE_HASH = source_hash(_TEMPLATE_TEXT)


@register_data_builder("text_generation")
class TextGeneration(PromptTransformer):
    TASK_TYPE = TextGenerationTask
    task: TextGenerationTask

    def system_for(self, row: Instruction) -> str | None:
        return row.system_prompt or self.task.system_prompt

    def prompt(self, row: Instruction) -> list[dict[str, Any]]:
        messages = [{"role": "user", "content": _TEMPLATE.render(instruction=row.instruction).strip()}]
        system = self.system_for(row)
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return messages

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    async def ask(self, prompt: str | list[dict[str, Any]], metadata: dict[str, Any]) -> LMResult:
        """One request for all ``num_generations`` answers (sampling ``n``)."""
        engine = self.engine
        params = engine.default_params.merged(n=self.task.num_generations)
        assert isinstance(prompt, list)
        return await engine.agenerate(LMRequest(messages=prompt, params=params, metadata=metadata))

    def answers(self, result: LMResult) -> list[Any]:
        return list(enumerate(result.texts))  # (generation_index, text)

    def parse(self, answer: tuple[int, str], row: Instruction) -> Any:
        index, text = answer
        if not text.strip():
            return Rejection(
                "empty generation",
                raw={
                    "input_id": row.id,
                    "instruction": row.instruction,
                    "generation_index": index,
                    "output": text,
                },
                block="text_generation",
            )
        return {
            "instruction": row.instruction,
            "system_prompt": self.system_for(row),
            "generation": text.strip(),
            "generation_index": index,
        }

    def records(self, produced: Any, result: LMResult, raw: Any, **lineage: Any) -> list[Any]:
        if isinstance(produced, dict):  # every record names the model that wrote it
            produced = {**produced, "model_name": result.model}
        return super().records(produced, result, raw, **lineage)
