"""The in-process ``vllm`` engine on the real default model (SmolLM2-135M-Instruct, CPU)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import jsonschema
import pytest

from fms_dgt.engines.types import Constraint, LMRequest, SamplingParams

pytestmark = pytest.mark.vllm

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}


def test_prompt_generation(vllm_engine) -> None:
    result = vllm_engine.generate(
        LMRequest(prompt="The capital of France is", params=SamplingParams(max_tokens=8, temperature=0.0))
    )
    assert result.ok, result.error
    assert result.text.strip()
    assert result.prompt_tokens > 0 and 0 < result.completion_tokens <= 8
    assert result.finish_reasons[0] in ("length", "stop")


def test_chat_applies_template(vllm_engine) -> None:
    result = vllm_engine.chat([{"role": "user", "content": "Say hello."}], max_tokens=16, temperature=0.0)
    assert result.ok, result.error
    assert result.text.strip()
    # the chat template wraps the message, so the prompt is longer than the two words
    assert result.prompt_tokens > 5


def test_n_samples(vllm_engine) -> None:
    params = SamplingParams(max_tokens=12, temperature=1.0, n=3, seed=7)
    result = vllm_engine.generate(LMRequest(prompt="Write a word:", params=params))
    assert result.ok, result.error
    assert len(result.texts) == 3 and len(result.finish_reasons) == 3


def test_seeded_output_is_reproducible(vllm_engine) -> None:
    params = SamplingParams(max_tokens=16, temperature=1.0, seed=1234)
    messages = [{"role": "user", "content": "Invent a name for a cat."}]
    first = vllm_engine.generate(LMRequest(messages=messages, params=params))
    second = vllm_engine.generate(LMRequest(messages=messages, params=params))
    other = vllm_engine.generate(LMRequest(messages=messages, params=params.merged(seed=99)))
    assert first.ok and second.ok and other.ok
    assert first.texts == second.texts
    assert first.texts != other.texts or first.texts == [""]


def test_json_schema_output_is_valid(vllm_engine) -> None:
    request = LMRequest(
        messages=[{"role": "user", "content": "Give a city and its population as JSON."}],
        params=SamplingParams(max_tokens=64, temperature=0.0),
        constraint=Constraint(json_schema=SCHEMA),
    )
    result = vllm_engine.generate(request)
    assert result.ok, result.error
    obj = json.loads(result.text)
    jsonschema.validate(obj, SCHEMA)
    assert result.parsed == [obj]
    assert not any(c.isspace() for c in result.text.replace(obj["city"], ""))  # compact_json


def test_choice_constraint(vllm_engine) -> None:
    request = LMRequest(
        prompt="Is the sky blue? Answer:",
        params=SamplingParams(max_tokens=4, temperature=0.0),
        constraint=Constraint(choices=["yes", "no"]),
    )
    result = vllm_engine.generate(request)
    assert result.ok, result.error
    assert result.text in ("yes", "no")


def test_too_long_prompt_is_a_failed_result_not_a_crash(vllm_engine) -> None:
    before = vllm_engine.stats.failed
    result = vllm_engine.generate(LMRequest(prompt="word " * 5000, params=SamplingParams(max_tokens=4)))
    assert not result.ok
    assert "max_model_len" in result.error
    assert result.texts == [] and vllm_engine.stats.failed == before + 1
    # the engine still works afterwards
    assert vllm_engine.generate(LMRequest(prompt="Hi", params=SamplingParams(max_tokens=2))).ok


def test_concurrent_requests_from_threads_and_loops(vllm_engine) -> None:
    results: list = []

    def worker() -> None:
        results.append(
            vllm_engine.generate(LMRequest(prompt="One, two,", params=SamplingParams(max_tokens=4)))
        )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()

    async def many() -> list:
        reqs = [LMRequest(prompt=f"Count to {i}:", params=SamplingParams(max_tokens=4)) for i in range(12)]
        return await vllm_engine.agenerate_batch(reqs)

    batch = asyncio.run(many())
    for t in threads:
        t.join()
    assert all(r.ok for r in results + batch)
    assert len(results) == 4 and len(batch) == 12


def test_seeded_requests_with_long_prompts_in_one_batch(vllm_engine) -> None:
    # 40 ~900-token prompts exceed a step's token budget; with chunked prefill on a CPU the
    # first seeded request cut mid-prefill killed the engine ("CPU Generator does not use
    # offset") and with it every request in flight (this very batch did, before the fix)
    text = " ".join(f"word{i}" for i in range(240))
    requests = [
        LMRequest(
            messages=[{"role": "user", "content": f"{text} Summarise item {i}."}],
            params=SamplingParams(max_tokens=16, temperature=0.8, seed=i),
        )
        for i in range(40)
    ]
    results = vllm_engine.generate_batch(requests)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:2]


def test_cancelled_request_is_aborted_inside_vllm(vllm_engine) -> None:
    runtime = vllm_engine._runtime
    request = LMRequest(prompt="Tell a very long story:", params=SamplingParams(max_tokens=900))

    async def cancel_soon() -> None:
        task = asyncio.ensure_future(vllm_engine._generate_once(request))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_soon())
    # the engine drops the request at once instead of generating its 900 tokens
    deadline = time.monotonic() + 5
    while runtime.in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.in_flight() == 0
    assert vllm_engine.generate(LMRequest(prompt="Hi", params=SamplingParams(max_tokens=2))).ok
