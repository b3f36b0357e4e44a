"""Session-wide fixtures. vLLM is loaded at most once per test session: the in-process
engine below is shared by every test that asks for it."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def vllm_engine() -> Iterator[object]:
    """A started in-process ``vllm`` engine on the embedded default model."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed")
    from fms_dgt.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine(name="test_vllm", max_model_len=1024, max_concurrency=32, timeout=300)
    try:
        import asyncio

        # start on the engine's private loop so every test can use the blocking API
        loop = engine._private_loop()
        asyncio.run_coroutine_threadsafe(engine.astart(), loop).result(timeout=600)
    except Exception as exc:
        engine.close()
        pytest.fail(f"could not start vLLM on the default model: {exc}")
    yield engine
    engine.close()
