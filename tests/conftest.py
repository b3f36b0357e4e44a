"""Session-wide fixtures. vLLM is loaded at most once per test session: the in-process
engine and the OpenAI-compatible server below are each shared by every test that asks."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

VLLM_READY_TIMEOUT = float(os.environ.get("DGT_TEST_VLLM_TIMEOUT", "300"))


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


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:P``, no ``/v1``) of a real vLLM server on the default
    model, launched the way the ``vllm-server`` engine launches its replicas."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed")
    from fms_dgt.engines.default_model import resolve_default_model
    from fms_dgt.engines.vllm_engine import prepare_cpu_env
    from fms_dgt.engines.vllm_server import ServerProcess
    from fms_dgt.errors import FatalEngineError

    try:
        model = resolve_default_model()
    except Exception as exc:  # no model available offline
        pytest.skip(f"default model unavailable: {exc}")
    server = ServerProcess(
        model,
        served_name=model,
        args=["--enforce-eager", "--max-model-len", "2048"],
        env=prepare_cpu_env({}),
        log_dir=tmp_path_factory.mktemp("vllm"),
    )
    server.start()
    try:
        server.wait_ready(VLLM_READY_TIMEOUT)
    except FatalEngineError as exc:
        server.stop()
        pytest.fail(str(exc))
    yield server.url
    server.stop()
