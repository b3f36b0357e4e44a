"""``bench_prompts``: call i sends fixed prompt i (greedy), so the framework and a direct
vLLM loop (``bench/vllm_inprocess.py``) generate the same tokens and can be compared.

Each record carries when its request was sent and answered (after the model finished
loading, and after one shared warm-up request, as the direct loop does), so tokens/s is
measured over generation only, not over model loading.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.vllm_inprocess import MAX_TOKENS, PROMPTS, TEMPERATURE, WARMUP_PROMPT
from fms_dgt.builders.base import GenerationDataBuilder
from fms_dgt.datapoint import DataPoint
from fms_dgt.engines import Engine, LMRequest, SamplingParams
from fms_dgt.registry import register_data_builder
from fms_dgt.task import GenerationTask


@dataclass(kw_only=True)
class Completion(DataPoint):
    prompt: str
    text: str


class PromptsTask(GenerationTask):
    INPUT_DATA_TYPE = Completion
    OUTPUT_DATA_TYPE = Completion


@register_data_builder("bench_prompts")
class BenchPromptsBuilder(GenerationDataBuilder):
    TASK_TYPE = PromptsTask
    llm1: Engine

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warm: asyncio.Task[Any] | None = None

    async def _warm_up(self) -> None:
        await self.llm1.agenerate(
            LMRequest(
                messages=[{"role": "user", "content": WARMUP_PROMPT}],
                params=SamplingParams(max_tokens=8, temperature=0.0),
            )
        )

    async def __call__(self, request_idx: int, seed_data: list[Completion]) -> list[Completion]:
        if self._warm is None:
            self._warm = asyncio.ensure_future(self._warm_up())
        await asyncio.shield(self._warm)
        prompt = PROMPTS[request_idx % len(PROMPTS)]
        params = SamplingParams(max_tokens=MAX_TOKENS, temperature=TEMPERATURE)
        sent = time.time()
        result = await self.llm1.agenerate(
            LMRequest(messages=[{"role": "user", "content": prompt}], params=params)
        )
        if not result.ok:
            return []
        return [
            self.task.instantiate_output_example(
                prompt=prompt,
                text=result.texts[0],
                lineage={"sent": sent, "done": time.time(), "completion_tokens": result.completion_tokens},
            )
        ]
