"""The ``chat_generation`` builder: the next assistant turn of each conversation.

Each row's ``messages`` (checked when the input is read: roles user/assistant/system, a
system message only first, the last message from the user) are sent as they are, after the
task's ``system_prompt`` when the conversation has no system message. ``num_generations``
turns come from one request (sampling ``n``); each is a record with the turn
(``generation``) and the conversation it completes (``conversation``).
"""

from __future__ import annotations

from typing import Any

from fms_dgt import LMRequest, LMResult, PromptTransformer, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash

from .task import ChatGenerationTask, Conversation


@register_data_builder("chat_generation")
class ChatGeneration(PromptTransformer):
    TASK_TYPE = ChatGenerationTask
    task: ChatGenerationTask

    def prompt(self, row: Conversation) -> list[dict[str, Any]]:
        messages = [dict(m) for m in row.messages]
        if self.task.system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.task.system_prompt})
        return messages

    def prompt_hash(self) -> str:
        return source_hash(self.task.system_prompt or "")  # the conversation is the prompt

    async def ask(self, prompt: str | list[dict[str, Any]], metadata: dict[str, Any]) -> LMResult:
        """One request for all ``num_generations`` turns (sampling ``n``)."""
        engine = self.engine
        params = engine.default_params.merged(n=self.task.num_generations)
        assert isinstance(prompt, list)
        return await engine.agenerate(LMRequest(messages=prompt, params=params, metadata=metadata))

    def answers(self, result: LMResult) -> list[Any]:
        return list(enumerate(result.texts))  # (generation_index, text)

    def parse(self, answer: tuple[int, str], row: Conversation) -> Any:
        index, text = answer
        sent = self.prompt(row)
        if not text.strip():
            return Rejection(
                "empty generation",
                raw={"input_id": row.id, "messages": sent, "generation_index": index, "output": text},
                block="chat_generation",
            )
        turn = {"role": "assistant", "content": text.strip()}
        return {
            "messages": sent,
            "generation": turn["content"],
            "conversation": [*sent, turn],
            "generation_index": index,
        }

    def records(self, produced: Any, result: LMResult, raw: Any, **lineage: Any) -> list[Any]:
        if isinstance(produced, dict):  # every record names the model that wrote it
            produced = {**produced, "model_name": result.model}
        return super().records(produced, result, raw, **lineage)
