"""Retry, backoff, Retry-After, timeout and failure-recording behaviour of the openai engine
against the loopback fault server, through both transports."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

import pytest

from fms_dgt.engines import Engine, LMRequest, LMResult, SamplingParams, use_sink
from fms_dgt.engines.openai_engine import OpenAIEngine
from tests.support.fault_server import Faults

TRANSPORTS = ["fast", "openai"]
CHAT = [{"role": "user", "content": "hello"}]


def make_engine(server: Any, transport: str, **kw: Any) -> OpenAIEngine:
    settings: dict[str, Any] = dict(timeout=2.0, backoff_base=0.01, backoff_max=0.5, max_retries=4)
    settings.update(kw)
    return OpenAIEngine("fake", base_url=server.url, api_key="sk-test", transport=transport, **settings)


def run(engine: OpenAIEngine, *requests: LMRequest) -> list[LMResult]:
    async def go() -> list[LMResult]:
        try:
            return await engine.agenerate_batch(list(requests))
        finally:
            await engine.aclose()

    return asyncio.run(go())


class Sink:
    def __init__(self) -> None:
        self.results: list[tuple[LMRequest, LMResult]] = []
        self.lock = threading.Lock()

    def on_result(self, engine: Engine, request: LMRequest, result: LMResult) -> None:
        with self.lock:
            self.results.append((request, result))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_503_then_success_is_retried(fault_server, transport):
    srv = fault_server(script=["503", "503", "ok"])
    engine = make_engine(srv, transport)
    (result,) = run(engine, LMRequest(messages=CHAT))
    assert result.ok and result.text
    assert result.attempts == 3
    assert srv.counts == {"requests": 3, "503": 2, "ok": 1}
    assert engine.stats.retries == 2 and engine.stats.failed == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", ["drop", "invalid_json", "truncated", "500", "502", "504"])
def test_transport_faults_are_retried(fault_server, transport, fault):
    srv = fault_server(script=[fault, "ok"])
    (result,) = run(make_engine(srv, transport), LMRequest(messages=CHAT))
    assert result.ok, result.error
    assert result.attempts == 2
    assert srv.counts[fault] == 1 and srv.counts["ok"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_429_honours_retry_after_seconds(fault_server, transport):
    srv = fault_server(Faults(retry_after=0.6), script=["429", "ok"])
    (result,) = run(make_engine(srv, transport), LMRequest(messages=CHAT))
    assert result.ok and result.attempts == 2
    (t0, _, first), (t1, _, second) = srv.log
    assert (first, second) == ("429", "ok")
    # backoff alone would be ~10 ms; the server asked for 600 ms
    assert 0.55 <= t1 - t0 < 3.0  # upper bound loose: a loaded 2-core machine is slow to resend


def test_503_retry_after_http_date_is_honoured(fault_server):
    srv = fault_server(
        Faults(retry_after="date", retry_after_seconds=2.0, retry_after_on_503=True), script=["503", "ok"]
    )
    (result,) = run(make_engine(srv, "fast"), LMRequest(messages=CHAT))
    assert result.ok and result.attempts == 2
    (t0, _, _), (t1, _, _) = srv.log
    # an HTTP-date has 1 s resolution: the wait is between 1 and 2 s, never the 10 ms backoff
    assert 0.9 <= t1 - t0 < 2.6


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stall_hits_timeout_and_is_retried(fault_server, transport):
    srv = fault_server(Faults(stall_seconds=10.0), script=["stall", "ok"])
    engine = make_engine(srv, transport, timeout=0.5)
    start = time.monotonic()
    (result,) = run(engine, LMRequest(messages=CHAT))
    elapsed = time.monotonic() - start
    assert result.ok and result.attempts == 2
    assert 0.4 <= elapsed < 3.0, elapsed
    assert srv.counts["stall"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_request_timeout_shorter_than_engine_timeout(fault_server, transport):
    srv = fault_server(Faults(stall_seconds=10.0), script=["stall", "ok"])
    engine = make_engine(srv, transport, timeout=30.0, request_timeout=0.4)
    (result,) = run(engine, LMRequest(prompt="hi"))
    assert result.ok and result.attempts == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("status", ["400", "401", "403", "404", "422"])
def test_client_errors_are_not_retried(fault_server, transport, status):
    srv = fault_server(script=[status, "ok"])
    sink = Sink()
    engine = make_engine(srv, transport)
    with use_sink(sink):
        (result,) = run(engine, LMRequest(messages=CHAT))
    assert not result.ok and result.attempts == 1
    assert f"HTTP {status}" in result.error and "FatalEngineError" in result.error
    assert srv.counts["requests"] == 1
    assert sink.results == [(sink.results[0][0], result)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_persistent_failure_becomes_a_recorded_error(fault_server, transport):
    srv = fault_server(Faults(p_503=1.0))
    sink = Sink()
    engine = make_engine(srv, transport, max_retries=2)
    request = LMRequest(messages=CHAT, metadata={"request_idx": 7})
    with use_sink(sink):
        (result,) = run(engine, request)
    assert result.error and "503" in result.error
    assert result.attempts == 3 and result.texts == []
    with pytest.raises(ValueError):
        _ = result.text  # a failure is never a None text
    assert srv.counts["requests"] == 3
    assert len(sink.results) == 1
    seen_request, seen_result = sink.results[0]
    assert seen_request.metadata == {"request_idx": 7} and seen_result is result
    assert engine.stats.failed == 1 and engine.stats.requests == 1


def test_backoff_grows_with_jitter(fault_server):
    srv = fault_server(Faults(p_503=1.0))
    engine = make_engine(srv, "fast", backoff_base=0.05, backoff_max=5.0, max_retries=4)
    (result,) = run(engine, LMRequest(messages=CHAT))
    assert result.attempts == 5
    times = [t for t, _, _ in srv.log]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # attempt k waits base * 2**(k-1) scaled by a jitter factor in [0.5, 1]
    for k, gap in enumerate(gaps, start=1):
        nominal = 0.05 * 2 ** (k - 1)
        assert 0.5 * nominal - 0.01 <= gap <= nominal + 0.1, (k, gap)
    assert gaps[-1] > gaps[0] * 2
    delays = [engine.retry.backoff(3, None) for _ in range(200)]
    assert len(set(delays)) > 150 and statistics.pstdev(delays) > 0.01
    assert min(delays) >= 0.1 and max(delays) <= 0.2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_outage_window_is_ridden_out(fault_server, transport):
    srv = fault_server()
    srv.schedule_outage(start_in=0.0, duration=0.8)
    engine = make_engine(srv, transport, backoff_base=0.1, backoff_max=0.4, max_retries=8)
    results = run(engine, *[LMRequest(prompt=f"p{i}") for i in range(4)])
    assert all(r.ok for r in results), [r.error for r in results]
    assert srv.counts["outage"] >= 4 and srv.counts["ok"] == 4


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_mixed_random_faults_under_concurrency(fault_server, transport):
    faults = Faults(
        p_503=0.2, p_429=0.05, retry_after=0.05, p_stall=0.05, stall_seconds=5.0,
        p_drop=0.05, p_invalid_json=0.05, p_truncated=0.05, seed=3,
    )  # fmt: skip
    srv = fault_server(faults)
    sink = Sink()
    # the timeout only has to cut the 5 s stalls short; tighter, a loaded 2-core CI machine
    # times out healthy answers too and the counts below stop adding up
    engine = make_engine(srv, transport, timeout=1.5, max_retries=10, max_concurrency=8)
    with use_sink(sink):
        results = run(engine, *[LMRequest(messages=CHAT, metadata={"i": i}) for i in range(60)])
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    counts = srv.counts
    faults_seen = counts["requests"] - counts["ok"]
    assert counts["ok"] == 60 and faults_seen > 10
    assert engine.stats.retries == faults_seen
    assert sorted(r.metadata["i"] for r, _ in sink.results) == list(range(60))


def test_blocking_generate_from_threads_shares_one_engine(fault_server):
    srv = fault_server(Faults(p_503=0.3, seed=5))
    engine = make_engine(srv, "fast", max_retries=8, max_concurrency=4)
    sink = Sink()
    out: list[LMResult] = []

    def worker(i: int) -> None:
        with use_sink(sink):
            out.append(engine.generate(LMRequest(prompt=f"p{i}", params=SamplingParams(max_tokens=4))))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    engine.close()
    assert len(out) == 12 and all(r.ok for r in out)
    assert len(sink.results) == 12
