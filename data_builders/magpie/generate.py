"""The ``magpie`` builder (the generation method of the Magpie paper, Xu et al. 2024): an
aligned chat model, given only the text its chat template puts before a user message,
writes a plausible user message itself; the model then answers it as usual. No seeds and no
prompt engineering: the instructions come from what the model learned users ask.

Each call builds one chat of ``turns`` exchanges:

1. the pre-query prefix (``chat_format.py``) of the conversation so far is sent as a raw
   prompt (``LMRequest(prompt=...)``: in-process vLLM takes it as is, servers get it on
   ``/v1/completions``); the completion, up to the model's end-of-turn, is the user message;
2. the conversation is sent as chat messages and the answer is the assistant message.

Template tokens never reach a record: special tokens and role labels around a message are
stripped, and a message that still holds one is rejected with the reason (so is an
instruction or answer cut at its token limit, or an empty one).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from fms_dgt import Engine, GenerationDataBuilder, LMRequest, Rejection, register_data_builder
from fms_dgt.engines.types import LMResult, SamplingParams

from .chat_format import ChatFormat, TemplateError
from .task import MagpieTask


@register_data_builder("magpie")
class MagpieBuilder(GenerationDataBuilder):
    TASK_TYPE = MagpieTask
    task: MagpieTask
    llm1: Engine

    def __init__(
        self, task: MagpieTask, blocks: dict[str, Any], metadata: dict[str, Any] | None = None
    ) -> None:
        super().__init__(task, blocks, metadata)
        self._format: ChatFormat | None = None
        self._format_lock: asyncio.Lock | None = None
        self._check_engine()

    def _check_engine(self) -> None:
        """At --validate: an ``openai`` endpoint gives no tokenizer unless its model is a
        local folder, so the task must say where the template comes from."""
        engine: Any = getattr(self.llm1, "shared", self.llm1)
        if engine.kind != "openai" or self.task.tokenizer or os.path.isdir(engine.model or ""):
            return
        if not self.task.pre_query_template:
            raise self.task.error(
                f"magpie cannot read the chat template of model '{engine.model}' from an 'openai' endpoint",
                "data_builder",
                hint="add 'tokenizer: <local folder with the model's tokenizer>' or "
                "'pre_query_template: <the text the template puts before a user message>'",
            )
        if self.task.turns > 1:
            raise self.task.error(
                "follow-up turns need the model's chat template; pre_query_template alone writes one turn",
                "turns",
                hint="add 'tokenizer: <local folder with the model's tokenizer>' or set turns: 1",
            )

    # ---- the chat format, found once --------------------------------------------------
    async def chat_format(self) -> ChatFormat:
        if self._format_lock is None:
            self._format_lock = asyncio.Lock()
        async with self._format_lock:
            if self._format is None:
                self._format = await self._find_format()
        return self._format

    async def _find_format(self) -> ChatFormat:
        """The engine's tokenizer, else the task's ``tokenizer`` folder, else its
        ``pre_query_template`` (see docs/builders.md#magpie)."""
        task = self.task
        probe = "system" if task.system_template is not None else None
        tokenizer, source = await self.llm1.chat_tokenizer(), "engine"
        if tokenizer is None and task.tokenizer:
            from fms_dgt.engines.openai_engine import local_tokenizer

            tokenizer, source = await asyncio.to_thread(local_tokenizer, task.tokenizer), "tokenizer"
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            try:
                return ChatFormat.from_tokenizer(tokenizer, source, system=probe)
            except TemplateError as exc:
                raise task.error(
                    f"magpie cannot use the model's chat template: {exc}", "data_builder"
                ) from None
        if task.pre_query_template:
            if task.turns > 1:
                raise task.error(
                    "follow-up turns need the model's chat template, and no tokenizer was found",
                    "turns",
                    hint="add 'tokenizer: <local folder with the model's tokenizer>' or set turns: 1",
                )
            return ChatFormat.from_pre_query_template(task.pre_query_template)
        raise task.error(
            f"no chat template found for model '{self.llm1.model}': the engine gives no tokenizer",
            "data_builder",
            hint="add 'tokenizer: <local folder>' or 'pre_query_template: ...' to the task",
        )

    # ---- one chat -----------------------------------------------------------------------
    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        fmt = await self.chat_format()
        samples = self.task.draw_samples(request_idx)
        system = self.task.system_message(samples)
        messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        tokens = {"prompt": 0, "completion": 0}
        result: LMResult | None = None
        for turn in range(self.task.turns):
            meta = {"request_idx": request_idx, "turn": turn}
            try:
                prefix = fmt.prefix(messages)
            except TemplateError as exc:
                return [Rejection(f"chat template failed: {exc}", {"messages": messages}, "magpie")]
            params = self._instruction_params(fmt, request_idx, turn)
            result = await self.llm1.agenerate(LMRequest(prompt=prefix, params=params, metadata=meta))
            if not result.ok:
                return []  # recorded as a failed request by the engine
            _count(tokens, result)
            text, problem = self._checked(fmt, result, "instruction", "instruction_max_tokens")
            if problem is not None:
                return [Rejection(problem, {"messages": messages, "text": result.text}, "magpie")]
            messages.append({"role": "user", "content": text})
            result = await self.llm1.agenerate(LMRequest(messages=list(messages), metadata=meta))
            if not result.ok:
                return []
            _count(tokens, result)
            text, problem = self._checked(fmt, result, "response", "max_tokens")
            if problem is not None:
                return [Rejection(problem, {"messages": messages, "text": result.text}, "magpie")]
            messages.append({"role": "assistant", "content": text})
        chat = [m for m in messages if m["role"] != "system"]
        return [
            self.task.instantiate_output_example(
                instruction=chat[0]["content"],
                response=chat[1]["content"],
                messages=messages,
                lineage={
                    "model": result.model if result else None,
                    "engine": self.llm1.name,
                    "prompt_template": self._template_hash(fmt),
                    "chat_template_source": fmt.source,
                    "tokens": tokens,
                    **({"samples": samples} if samples else {}),
                },
            )
        ]

    def _instruction_params(self, fmt: ChatFormat, request_idx: int, turn: int) -> SamplingParams:
        """The block's sampling with the task's instruction settings, the template's stop
        strings, one sample, and a seed per call and turn when the run is seeded (a fixed
        seed would write the same instruction every time)."""
        base = self.llm1.default_params
        seed = base.seed if base.seed is not None else self.task.runner_config.seed
        if seed is not None:
            digest = hashlib.sha256(f"{seed}:{request_idx}:{turn}".encode()).digest()
            seed = int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
        stops = [*(base.stop or []), *fmt.stops]
        return base.merged(
            max_tokens=self.task.instruction_max_tokens,
            temperature=self.task.instruction_temperature,
            stop=stops or None,
            n=1,
            seed=seed,
        )

    @staticmethod
    def _checked(fmt: ChatFormat, result: LMResult, what: str, limit: str) -> tuple[str, str | None]:
        """The message ``result`` holds, cleaned, and why it cannot be used (or None)."""
        if result.finish_reasons and result.finish_reasons[0] == "length":
            return "", f"{what} cut at {limit}"
        text = fmt.clean(result.text)
        if not text:
            return "", f"empty {what}"
        leaked = fmt.leak(text)
        if leaked is not None:
            return text, f"template token in the {what}: {leaked!r}"
        return text, None

    def _template_hash(self, fmt: ChatFormat) -> str:
        source = fmt.pre_query_template or str(getattr(fmt.tokenizer, "chat_template", ""))
        return hashlib.sha1(f"{source}\n{self.task.system_source}".encode()).hexdigest()[:12]


def _count(tokens: dict[str, int], result: LMResult) -> None:
    tokens["prompt"] += result.prompt_tokens
    tokens["completion"] += result.completion_tokens
