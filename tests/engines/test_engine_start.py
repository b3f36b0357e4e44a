"""An engine that cannot start (a model that does not load, a server that never comes up)
stops its tasks at once with the reason, instead of being relaunched by every builder call.
The real-server version of this is in test_vllm_server_engine.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fms_dgt.config.overrides import Overrides
from fms_dgt.engines.base import Engine
from fms_dgt.engines.types import LMRequest, LMResult
from fms_dgt.errors import ConfigError, EngineStartError, FatalEngineError, MissingDependencyError
from fms_dgt.runtime import Runtime
from tests.core.helpers import FIXTURE_BUILDERS, write_task

STARTS: dict[str, int] = {}


class BrokenEngine(Engine):
    """Fails to start after a short delay (so concurrent callers queue on the start)."""

    kind = "broken"

    def __init__(self, model: str | None = "broken", *, failure: str = "load", **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.failure = failure

    async def _start(self) -> None:
        STARTS[self.name] = STARTS.get(self.name, 0) + 1
        await asyncio.sleep(0.05)
        if self.failure == "dependency":
            raise MissingDependencyError("the 'broken' engine needs a package", hint="pip install it")
        if self.failure == "fatal":
            raise FatalEngineError("server exited with status 1; last lines of its log: boom")
        raise RuntimeError("weights file is truncated")

    async def _generate_once(self, request: LMRequest) -> LMResult:  # pragma: no cover
        raise AssertionError("never reached")


def test_start_failure_is_remembered_and_reported_once() -> None:
    engine = BrokenEngine(name="e1")

    async def many() -> list[BaseException | LMResult]:
        reqs = [engine.agenerate(LMRequest(prompt="x")) for _ in range(20)]
        return await asyncio.gather(*reqs, return_exceptions=True)

    outcomes = asyncio.run(many())
    assert STARTS["e1"] == 1
    assert all(isinstance(o, EngineStartError) for o in outcomes)
    assert "engine 'e1' could not start: RuntimeError: weights file is truncated" in str(outcomes[0])


@pytest.mark.parametrize(
    ("failure", "error", "text"),
    [
        ("fatal", EngineStartError, "could not start: server exited with status 1; last lines"),
        ("dependency", MissingDependencyError, "pip install it"),
    ],
)
def test_start_failure_keeps_its_message(failure: str, error: type, text: str) -> None:
    engine = BrokenEngine(name=f"e-{failure}", failure=failure)
    with pytest.raises(error, match=text):
        engine.generate(LMRequest(prompt="x"))
    with pytest.raises(error):
        engine.generate(LMRequest(prompt="x"))
    assert STARTS[f"e-{failure}"] == 1
    engine.close()  # closing makes a later start a fresh attempt
    with pytest.raises(error):
        engine.generate(LMRequest(prompt="x"))
    assert STARTS[f"e-{failure}"] == 2
    engine.close()


@pytest.mark.parametrize("builder", ["echo", "echo_sync"])
def test_task_stops_with_the_reason_when_its_engine_cannot_start(tmp_path, builder: str) -> None:
    name = f"broken-{builder}"
    path = write_task(tmp_path / "t", builder=builder, runner_config={"num_outputs_to_generate": 50})
    engine = {"class_path": "tests.engines.test_engine_start:BrokenEngine", "name": name}
    rt = Runtime(
        [str(path)], [str(FIXTURE_BUILDERS)], output_dir=tmp_path / "out", overrides=Overrides(engine=engine)
    )
    rt.prepare()
    (outcome,) = asyncio.run(rt.run())
    assert outcome.status == "failed"
    assert "could not start" in outcome.message and "weights file is truncated" in outcome.message
    assert STARTS[name] == 1
    assert outcome.results["status"] == "failed"


@pytest.mark.parametrize("kind", ["vllm", "vllm-server"])
def test_missing_local_model_is_a_config_error_before_anything_starts(kind: str, tmp_path) -> None:
    from fms_dgt.registry import engines

    cls = engines.get(kind)
    with pytest.raises(ConfigError, match="does not exist") as info:
        cls(model=str(tmp_path / "missing-model"))
    assert info.value.field == "model"
    cls(model="some-org/some-hub-model")  # not a path: left for vLLM to find on the hub


# a stand-in for vLLM's server with the same command-line contract (``--port P``) and the
# same failure when the port is taken; the real server's start is tested with real vLLM
STANDIN_SERVER = """
import http.server, json, sys
class Models(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"data": [{"id": "standin"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
port = int(sys.argv[sys.argv.index("--port") + 1])
http.server.HTTPServer(("127.0.0.1", port), Models).serve_forever()
"""


def test_server_relaunched_when_its_port_is_taken_before_it_binds(monkeypatch, tmp_path, caplog) -> None:
    import socket
    import sys

    from fms_dgt.engines import vllm_server

    class StandIn(vllm_server.ServerProcess):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.cmd = [sys.executable, "-c", STANDIN_SERVER, "--port", str(self.port)]

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    ports = iter([taken])
    real_free_port = vllm_server.free_port
    monkeypatch.setattr(vllm_server, "free_port", lambda: next(ports, None) or real_free_port())
    monkeypatch.setattr(vllm_server, "ServerProcess", StandIn)
    monkeypatch.setattr(vllm_server, "on_cpu", lambda: False)
    engine = vllm_server.VLLMServerEngine(model=str(tmp_path), log_dir=str(tmp_path), startup_timeout=30)
    try:
        with caplog.at_level("WARNING", logger="fms_dgt.engines.vllm_server"):
            loop = engine._private_loop()
            asyncio.run_coroutine_threadsafe(engine.astart(), loop).result(timeout=60)
        (server,) = engine._servers
        assert server.port != taken
        assert f"port {taken} was taken" in caplog.text
    finally:
        engine.close()
        squatter.close()
