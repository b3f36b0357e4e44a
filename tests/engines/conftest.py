"""Fixtures for engine tests: a fault-injecting loopback server, and one real vLLM OpenAI
server per test session (started only if a test asks for it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # so ``tests.support`` imports however pytest is invoked
    sys.path.insert(0, str(ROOT))

from tests.support.fault_server import FaultServer  # noqa: E402

VLLM_READY_TIMEOUT = float(os.environ.get("DGT_TEST_VLLM_TIMEOUT", "180"))


@pytest.fixture
def fault_server() -> Iterator[Callable[..., FaultServer]]:
    """A factory: ``fault_server(faults=..., script=[...], upstream=...)`` → a started server,
    stopped at the end of the test."""
    started: list[FaultServer] = []

    def make(*args: object, **kwargs: object) -> FaultServer:
        server = FaultServer(*args, **kwargs).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:P``, no ``/v1``) of a real vLLM server on the default model."""
    try:
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            pytest.skip("vllm is not installed")
        from fms_dgt.engines.default_model import resolve_default_model

        model = resolve_default_model()
    except Exception as exc:  # no model available offline
        pytest.skip(f"default model unavailable: {exc}")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0", VLLM_CPU_KVCACHE_SPACE="1")
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--enforce-eager", "--max-model-len", "2048"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + VLLM_READY_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"vLLM server not ready after {VLLM_READY_TIMEOUT:g}s:\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
