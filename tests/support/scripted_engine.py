"""A deterministic engine for testing runtime mechanics (resume, filters, CLI flags) fast.

It is registered from tests only, and never the only path a feature is tested on: the
end-to-end tests run the same tasks on real vLLM. Answers are JSON question/answer pairs
derived from a counter, with optional duplicates and failures to exercise filters and the
failed-record path."""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any

from fms_dgt.engines.base import Engine
from fms_dgt.engines.types import LMRequest, LMResult
from fms_dgt.errors import RetryableEngineError


class ScriptedEngine(Engine):
    kind = "scripted"

    def __init__(
        self,
        model: str | None = "scripted",
        *,
        latency: float = 0.0,
        duplicate_every: int = 0,
        fail_every: int = 0,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.latency = latency
        self.duplicate_every = duplicate_every
        self.fail_every = fail_every
        self.counter = 0
        self.rng = random.Random(seed)
        # distinct per process, so a resumed run does not regenerate the same texts
        self.run_tag = f"{os.getpid() % 10000:04d}"

    async def _generate_once(self, request: LMRequest) -> LMResult:
        self.counter += 1
        n = self.counter
        if self.latency:
            await asyncio.sleep(self.latency * (0.5 + self.rng.random()))
        if self.fail_every and n % self.fail_every == 0:
            raise RetryableEngineError(f"scripted failure {n}", status=503)
        texts = []
        for i in range(request.params.n):
            k = 1 if self.duplicate_every and n % self.duplicate_every == 0 else n * 100 + i
            if (
                request.messages is not None
                and "Question:" in request.messages[-1]["content"]
                and request.constraint is None
            ):
                texts.append(f"Answer number {k}.")
            else:
                texts.append(
                    json.dumps(
                        {
                            "question": f"Why does scripted event {k} happen in run {self.run_tag}?",
                            "answer": f"Because of cause {k}.",
                        }
                    )
                )
        return LMResult(
            texts=texts,
            finish_reasons=["stop"] * len(texts),
            prompt_tokens=10,
            completion_tokens=5 * len(texts),
            model=self.model,
        )
