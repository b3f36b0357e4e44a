"""Session-wide fixtures. vLLM is loaded at most once per test session: the in-process
engine and the ``vllm-server`` engine (two OpenAI-compatible replicas) below are each
shared by every test that asks."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from typing import Any

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
def _vllm_server_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The one ``vllm-server`` engine of the session: two replicas on the default model.
    Tests reach it through ``vllm_server_engine`` or ``vllm_server`` (never directly), which
    restart it if a test closed it."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed")
    from fms_dgt.engines.vllm_server import VLLMServerEngine

    engine = VLLMServerEngine(
        name="test_vllm_server",
        replicas=2,
        max_concurrency=32,
        timeout=300,
        startup_timeout=VLLM_READY_TIMEOUT,
        log_dir=str(tmp_path_factory.mktemp("vllm-server-logs")),
    )
    yield engine
    engine.close()


@pytest.fixture
def vllm_server_engine(_vllm_server_engine: object) -> object:
    """The session's started ``vllm-server`` engine (servers up, blocking API usable)."""
    import asyncio

    from fms_dgt.errors import FatalEngineError

    engine: Any = _vllm_server_engine
    if not engine._servers:
        # started on the engine's private loop so tests can use the blocking API
        loop = engine._private_loop()
        try:
            asyncio.run_coroutine_threadsafe(engine.astart(), loop).result(timeout=VLLM_READY_TIMEOUT + 60)
        except FatalEngineError as exc:
            pytest.fail(f"could not start the vLLM servers: {exc}")
    return engine


@pytest.fixture
def vllm_server(vllm_server_engine: Any) -> str:
    """Base URL (``http://127.0.0.1:P``, no ``/v1``) of a real vLLM server on the default
    model, serving it as ``HuggingFaceTB/SmolLM2-135M-Instruct``: the first replica of the
    session's ``vllm-server`` engine (one launcher for tests and runs)."""
    return str(vllm_server_engine._servers[0].url)


def pytest_unconfigure(config: pytest.Config) -> None:
    """torch, imported inside a test, gives its loggers handlers on pytest's capture stream,
    which is closed by now (or is about to be); its exit-time statistics would print
    'Logging error' tracebacks."""
    logging.raiseExceptions = False  # a handler on a closed capture stream drops the record
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            stream = getattr(handler, "stream", None)
            if stream is not None and getattr(stream, "closed", False):
                logger.removeHandler(handler)
