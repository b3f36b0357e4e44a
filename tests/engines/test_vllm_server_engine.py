"""The ``vllm-server`` engine: real vLLM servers started on loopback and driven through the
OpenAI-compatible API (chat, completions, json_schema, concurrency, replicas, cleanup)."""

from __future__ import annotations

import asyncio
import json
import os

import jsonschema
import pytest

from fms_dgt.engines.types import Constraint, LMRequest, SamplingParams

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def server_engine(tmp_path_factory):
    from fms_dgt.engines.vllm_server import VLLMServerEngine

    engine = VLLMServerEngine(
        name="srv",
        replicas=2,
        max_model_len=1024,
        max_concurrency=32,
        log_dir=str(tmp_path_factory.mktemp("srvlogs")),
        startup_timeout=400,
    )
    loop = engine._private_loop()
    asyncio.run_coroutine_threadsafe(engine.astart(), loop).result(timeout=600)
    yield engine
    engine.close()


def test_chat_completions_and_json_schema(server_engine) -> None:
    chat = server_engine.chat([{"role": "user", "content": "Say hi."}], max_tokens=8, temperature=0.0)
    assert chat.ok, chat.error
    assert chat.text.strip() and chat.prompt_tokens > 0
    completion = server_engine.generate(
        LMRequest(prompt="The sky is", params=SamplingParams(max_tokens=6, temperature=0.0))
    )
    assert completion.ok, completion.error
    assert completion.text
    structured = server_engine.generate(
        LMRequest(
            messages=[{"role": "user", "content": "A person as JSON with name and age."}],
            params=SamplingParams(max_tokens=64, temperature=0.0),
            constraint=Constraint(json_schema=SCHEMA),
        )
    )
    assert structured.ok, structured.error
    jsonschema.validate(json.loads(structured.text), SCHEMA)


def test_32_concurrent_requests_spread_over_replicas(server_engine) -> None:
    requests = [LMRequest(prompt=f"Number {i} is", params=SamplingParams(max_tokens=4)) for i in range(32)]
    results = server_engine.generate_batch(requests)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    served = server_engine._replicas.served
    assert len(served) == 2 and min(served) >= 8, served


def test_servers_stop_on_close(tmp_path) -> None:
    from fms_dgt.engines.vllm_server import VLLMServerEngine

    engine = VLLMServerEngine(name="short", max_model_len=512, log_dir=str(tmp_path), startup_timeout=400)
    assert engine.chat([{"role": "user", "content": "Hi"}], max_tokens=2).ok
    pids = [s.proc.pid for s in engine._servers]
    engine.close()
    assert pids and not any(_alive(p) for p in pids)


def test_startup_failure_reports_log_tail(tmp_path) -> None:
    from fms_dgt.engines.vllm_server import VLLMServerEngine

    engine = VLLMServerEngine(
        model=str(tmp_path / "no-such-model"),
        name="bad",
        log_dir=str(tmp_path),
        startup_timeout=120,
        max_retries=0,
    )
    from fms_dgt.errors import FatalEngineError

    # a server that cannot start is a fatal problem of the run, not a per-request failure
    with pytest.raises(FatalEngineError, match="vLLM server exited") as info:
        engine.chat([{"role": "user", "content": "Hi"}], max_tokens=2)
    engine.close()
    assert "last lines of" in str(info.value) and "no-such-model" in str(info.value)
    assert not engine._servers
