"""The openai engine: request/response mapping, configuration, both transports against the
fake server, and chat / completions / json_schema / n>1 / constraints against a real vLLM
OpenAI server running SmolLM2 on CPU."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from typing import Any

import pytest

from fms_dgt.engines import Constraint, LMRequest, LMResult, SamplingParams
from fms_dgt.engines.openai_engine import OpenAIEngine
from fms_dgt.engines.transports import parse_retry_after, status_error
from fms_dgt.errors import ConfigError, FatalEngineError, RetryableEngineError
from fms_dgt.registry import engines

TRANSPORTS = ["fast", "openai"]
CHAT = [{"role": "user", "content": "hello"}]
PERSON = {
    "title": "Person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def run(engine: OpenAIEngine, *requests: LMRequest) -> list[LMResult]:
    async def go() -> list[LMResult]:
        try:
            return await engine.agenerate_batch(list(requests))
        finally:
            await engine.aclose()

    return asyncio.run(go())


# ---- configuration and mapping (no network) ----------------------------------------------
def test_registered_lazily_as_openai():
    assert engines.get("openai") is OpenAIEngine


def test_base_url_and_key_defaults_from_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123")
    engine = OpenAIEngine("m")
    assert engine.base_url == "http://127.0.0.1:9/v1" and engine._api_key == "sk-from-env-123"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert OpenAIEngine("m").base_url == "https://api.openai.com/v1"


def test_api_key_env_and_secret_never_shown(monkeypatch):
    monkeypatch.setenv("MY_SECRET_KEY", "sk-planted-secret")
    engine = OpenAIEngine("m", base_url="http://x/v1", api_key_env="MY_SECRET_KEY")
    assert engine._api_key == "sk-planted-secret"
    assert "sk-planted" not in repr(engine) and "sk-planted" not in json.dumps(engine.describe())
    with pytest.raises(ConfigError, match="NOPE_NOT_SET"):
        OpenAIEngine("m", api_key_env="NOPE_NOT_SET")


@pytest.mark.parametrize(
    "kwargs,field", [({"api": "responses"}, "api"), ({"transport": "curl"}, "transport")]
)
def test_bad_settings_are_config_errors(kwargs, field):
    with pytest.raises(ConfigError) as info:
        OpenAIEngine("m", **kwargs)
    assert info.value.field == field


def test_build_body_chat_and_completions():
    engine = OpenAIEngine("m", base_url="http://x/v1", extra_body={"top_k": 5})
    params = SamplingParams(max_tokens=9, temperature=0.2, top_p=0.9, stop=["\n"], n=3, seed=11)
    path, body = engine.build_body(LMRequest(messages=CHAT, params=params))
    assert path == "/chat/completions"
    assert body == {
        "model": "m", "max_tokens": 9, "temperature": 0.2, "top_p": 0.9, "n": 3,
        "stop": ["\n"], "seed": 11, "messages": CHAT, "top_k": 5,
    }  # fmt: skip
    path, body = engine.build_body(LMRequest(prompt="Once"))
    assert path == "/completions" and body["prompt"] == "Once"
    assert "n" not in body and "seed" not in body and "stop" not in body


def test_completions_api_refuses_messages():
    engine = OpenAIEngine("m", base_url="http://x/v1", api="completions")
    with pytest.raises(FatalEngineError):
        engine.build_body(LMRequest(messages=CHAT))


def test_max_tokens_field_for_reasoning_models():
    engine = OpenAIEngine("m", base_url="http://x/v1", max_tokens_field="max_completion_tokens")
    _, body = engine.build_body(LMRequest(messages=CHAT))
    assert "max_completion_tokens" in body and "max_tokens" not in body


def test_constraints_map_to_response_format_and_vllm_fields():
    engine = OpenAIEngine("m", base_url="http://x/v1")
    _, body = engine.build_body(LMRequest(messages=CHAT, constraint=Constraint(json_schema=PERSON)))
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Person", "schema": PERSON, "strict": True},
    }
    _, body = engine.build_body(LMRequest(messages=CHAT, constraint=Constraint(regex=r"\d+")))
    assert body["structured_outputs"] == {"regex": r"\d+"}
    _, body = engine.build_body(LMRequest(prompt="x", constraint=Constraint(choices=["a", "b"])))
    assert body["structured_outputs"] == {"choice": ["a", "b"]}
    legacy = OpenAIEngine("m", base_url="http://x/v1", constraint_style="guided")
    _, body = legacy.build_body(LMRequest(prompt="x", constraint=Constraint(choices=["a", "b"])))
    assert body["guided_choice"] == ["a", "b"] and "structured_outputs" not in body


def test_parse_response_orders_choices_and_never_returns_none(caplog):
    engine = OpenAIEngine("m", base_url="http://x/v1")
    data = {
        "model": "served",
        "choices": [
            {"index": 1, "message": {"content": None, "refusal": "no"}, "finish_reason": "stop"},
            {"index": 0, "message": {"content": "first"}, "finish_reason": "length"},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    result = engine.parse_response(data, chat=True, n=2)
    assert result.texts == ["first", "no"] and result.finish_reasons == ["length", "stop"]
    assert (result.prompt_tokens, result.completion_tokens, result.model) == (3, 4, "served")
    with caplog.at_level(logging.WARNING, "fms_dgt.engines.openai"):
        short = engine.parse_response({"choices": [{"text": None}]}, chat=False, n=2)
    assert short.texts == [""] and "n=2" in caplog.text
    for bad in ({}, {"choices": []}, {"choices": [{"nope": 1}]}, {"error": {"message": "x"}}):
        with pytest.raises(RetryableEngineError):
            engine.parse_response(bad, chat=True)


def test_retry_after_parsing():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({}) is None and parse_retry_after({"retry-after": "soon"}) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after({"retry-after": date}) <= 30  # type: ignore[operator]
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retryable_statuses(status):
    err = status_error(status, {"retry-after": "2"}, b'{"error": {"message": "busy"}}')
    assert isinstance(err, RetryableEngineError) and err.status == status and err.retry_after == 2.0
    assert "busy" in str(err)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_fatal_statuses(status):
    err = status_error(status, {}, b"not json at all")
    assert isinstance(err, FatalEngineError) and err.status == status and "not json" in str(err)


# ---- both transports against the fake server --------------------------------------------
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fake_chat_completions_schema_and_n(fault_server, transport):
    srv = fault_server()
    engine = OpenAIEngine("fake", base_url=srv.url, transport=transport, timeout=5)
    chat, completion, structured = run(
        engine,
        LMRequest(messages=CHAT, params=SamplingParams(n=3)),
        LMRequest(prompt="Once upon"),
        LMRequest(messages=CHAT, constraint=Constraint(json_schema=PERSON)),
    )
    assert len(chat.texts) == 3 and chat.finish_reasons == ["stop"] * 3
    assert completion.ok and completion.texts == ["Hello from the fault server."]
    assert structured.parsed == [{"name": "x", "age": 1}]
    assert engine.stats.requests == 3 and engine.stats.prompt_tokens == 15
    assert {path for _, path, _ in srv.log} == {"/v1/chat/completions", "/v1/completions"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_model_discovered_from_models_endpoint(fault_server, transport):
    srv = fault_server()
    engine = OpenAIEngine(base_url=srv.url, transport=transport)
    (result,) = run(engine, LMRequest(prompt="x"))
    assert result.ok and engine.model == "fake"


def test_invalid_structured_output_is_retried_then_recorded(fault_server):
    def responder(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"choices": [{"index": 0, "message": {"content": '{"name": 1}'}, "finish_reason": "stop"}]}

    srv = fault_server(responder=responder)
    engine = OpenAIEngine("fake", base_url=srv.url, max_parse_retries=2)
    (result,) = run(engine, LMRequest(messages=CHAT, constraint=Constraint(json_schema=PERSON)))
    assert not result.ok and "schema" in result.error
    assert srv.counts["requests"] == 3
    assert result.attempts == 3 and engine.stats.retries == 2  # every request sent is counted


def test_keep_invalid_gives_an_invalid_answer_back_at_once(fault_server):
    bodies: list[dict[str, Any]] = []

    def responder(path: str, body: dict[str, Any]) -> dict[str, Any]:
        bodies.append(body)
        return {"choices": [{"index": 0, "message": {"content": "no JSON here"}, "finish_reason": "stop"}]}

    srv = fault_server(responder=responder)
    engine = OpenAIEngine("fake", base_url=srv.url, max_parse_retries=2)
    request = LMRequest(messages=CHAT, constraint=Constraint(json_schema=PERSON), keep_invalid=True)
    (result,) = run(engine, request)
    assert result.ok and result.texts == ["no JSON here"] and result.parsed is None
    assert (result.invalid or "").startswith("not JSON") and result.attempts == 1
    assert srv.counts["requests"] == 1 and engine.stats.failed == 0 and engine.stats.retries == 0
    assert bodies[0]["response_format"]["json_schema"]["schema"] == PERSON  # still constrained
    plain = LMRequest(messages=CHAT, constraint=Constraint(json_schema=PERSON))
    assert request.cache_key("openai", "fake") != plain.cache_key("openai", "fake")


def test_a_parse_retry_does_not_use_up_the_transport_retries(fault_server):
    answers = iter(['{"name": 1}', '{"name": 2}', '{"name": "x", "age": 1}'])

    def responder(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"choices": [{"index": 0, "message": {"content": next(answers)}, "finish_reason": "stop"}]}

    srv = fault_server(responder=responder, script=["503", "503"])
    engine = OpenAIEngine("fake", base_url=srv.url, max_retries=2, max_parse_retries=2, backoff_base=0.01)
    (result,) = run(engine, LMRequest(messages=CHAT, constraint=Constraint(json_schema=PERSON)))
    assert result.ok and result.parsed == [{"name": "x", "age": 1}]
    assert result.attempts == 5 and srv.counts["requests"] == 5 and engine.stats.retries == 4


# ---- a real vLLM server -----------------------------------------------------------------
@pytest.fixture
def vllm_url(vllm_server: str) -> str:
    return vllm_server + "/v1"


@pytest.mark.vllm
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_real_chat_completions_schema_and_n(vllm_url, transport):
    engine = OpenAIEngine(base_url=vllm_url, transport=transport, timeout=120)
    chat, completion, structured, pair = run(
        engine,
        LMRequest(messages=[{"role": "user", "content": "Say hello."}], params=SamplingParams(max_tokens=24)),
        LMRequest(prompt="The capital of France is", params=SamplingParams(max_tokens=8, temperature=0)),
        LMRequest(
            messages=[{"role": "user", "content": "Describe a person as JSON with name and age."}],
            params=SamplingParams(max_tokens=64),
            constraint=Constraint(json_schema=PERSON),
        ),
        LMRequest(
            messages=[{"role": "user", "content": "Tell a fact."}], params=SamplingParams(max_tokens=16, n=2)
        ),
    )
    for result in (chat, completion, structured, pair):
        assert result.ok, result.error
        assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert chat.text.strip() and chat.finish_reasons[0] in ("stop", "length")
    assert "Paris" in completion.text
    person = structured.parsed[0]  # type: ignore[index]
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    assert len(pair.texts) == 2 and all(isinstance(t, str) for t in pair.texts)
    assert engine.model.endswith("SmolLM2-135M-Instruct")


@pytest.mark.vllm
def test_real_constraints_and_seed_agree_across_transports(vllm_url):
    seeded = SamplingParams(max_tokens=16, seed=7)
    requests = [
        LMRequest(
            messages=[{"role": "user", "content": "Yes or no?"}],
            params=seeded,
            constraint=Constraint(choices=["yes", "no"]),
        ),
        LMRequest(
            messages=[{"role": "user", "content": "A number"}],
            params=seeded,
            constraint=Constraint(regex=r"[0-9]{3}"),
        ),
        LMRequest(messages=[{"role": "user", "content": "Hi!"}], params=seeded),
    ]
    fast = run(OpenAIEngine(base_url=vllm_url, transport="fast"), *requests)
    official = run(OpenAIEngine(base_url=vllm_url, transport="openai"), *requests)
    assert fast[0].text in ("yes", "no") and len(fast[1].text) == 3 and fast[1].text.isdigit()
    # the same seed gives the same sample whichever client sent the request
    assert [r.texts for r in fast] == [r.texts for r in official]


@pytest.mark.vllm
def test_real_32_concurrent_requests(vllm_url):
    engine = OpenAIEngine(base_url=vllm_url, max_concurrency=32, timeout=120)
    requests = [LMRequest(prompt=f"Fact {i}:", params=SamplingParams(max_tokens=8)) for i in range(32)]
    results = run(engine, *requests)
    assert all(r.ok for r in results) and engine.stats.requests == 32


@pytest.mark.vllm
def test_real_seeded_output_repeats_across_separate_vllm_processes(vllm_server_engine):
    """Run to run: the session's two replicas are separate vLLM processes started apart;
    the same seeded request gives the same text on each (and a different seed another)."""
    urls = [f"{server.url}/v1" for server in vllm_server_engine._servers]
    assert len(urls) == 2
    request = LMRequest(
        messages=[{"role": "user", "content": "Name three colours of autumn leaves."}],
        params=SamplingParams(max_tokens=24, temperature=1.0, seed=2024),
    )
    first, second = (run(OpenAIEngine(base_url=url, timeout=120), request)[0] for url in urls)
    assert first.ok and second.ok and first.text
    assert first.text == second.text
    other = run(
        OpenAIEngine(base_url=urls[1], timeout=120),
        LMRequest(messages=request.messages, params=request.params.merged(seed=7)),
    )[0]
    assert other.ok and other.text != first.text
