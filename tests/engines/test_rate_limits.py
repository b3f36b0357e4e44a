"""rpm and tpm of the openai engine, checked where a provider checks them: at the server.
The loopback server (in a process of its own, so a busy test machine does not make it stamp
arrivals late) records when each request arrived and the tokens it counted for it; every
sliding window must hold the limit (2% slack). The provider's minute is shrunk to 2 s
(``rate_window``, a test-only knob) so a test takes seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fms_dgt.engines import LMRequest, LMResult, SamplingParams
from fms_dgt.engines.openai_engine import OpenAIEngine
from fms_dgt.engines.rate_limits import PromptEstimator, WindowBudget
from tests.support.server_process import ServerProcess, TokenUsage

WINDOW = 2.0


@pytest.fixture
def server() -> Iterator[Any]:
    """A factory: ``server(**FaultServer kwargs)`` → a started ``ServerProcess``."""
    started: list[ServerProcess] = []

    def make(**kwargs: Any) -> ServerProcess:
        srv = ServerProcess(**kwargs).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def busiest_window(records: list[tuple[float, float]], window: float) -> tuple[float, int]:
    """The largest sum (and request count) of any ``window`` seconds starting at an arrival."""
    records = sorted(records)
    best, best_count, j, total = 0.0, 0, 0, 0.0
    for i, (start, _) in enumerate(records):
        while j < len(records) and records[j][0] < start + window:
            total += records[j][1]
            j += 1
        if total > best:
            best, best_count = total, j - i
        total -= records[i][1]
    return best, best_count


def _drive(engine: OpenAIEngine, requests: list[LMRequest]) -> tuple[list[LMResult], float]:
    async def go() -> tuple[list[LMResult], float]:
        t0 = time.monotonic()
        try:
            out = await engine.agenerate_batch(requests)
            return out, time.monotonic() - t0
        finally:
            await engine.aclose()

    return asyncio.run(go())


def _engine(srv: ServerProcess, **kw: Any) -> OpenAIEngine:
    engine = OpenAIEngine("fake", base_url=srv.url, api_key="sk-test", **kw)
    engine.rate_window = WINDOW
    return engine


def _chats(content: str, n: int) -> list[LMRequest]:
    return [LMRequest(messages=[{"role": "user", "content": f"{content}{i}"}]) for i in range(n)]


def test_rpm_holds_in_every_sliding_window(server: Any) -> None:
    srv = server()
    engine = _engine(srv, rpm=30)
    results, took = _drive(engine, _chats("q", 100))
    assert all(r.ok for r in results)
    arrivals = [(t, 1.0) for t, _, _ in srv.records()["log"]]
    assert len(arrivals) == 100
    most, _ = busiest_window(arrivals, WINDOW)
    assert most <= 30 * 1.02, most
    # and the limit is used, not starved: 100 requests at 30 per window need just over 3 windows
    assert took < (100 / 30 + 1) * WINDOW * 1.5, took


def test_tpm_counts_estimates_and_corrects_them_with_usage(server: Any) -> None:
    srv = server(responder=TokenUsage(chars=4.0, completion=20))
    engine = _engine(srv, tpm=1400, sampling={"max_tokens": 100})
    # ~50 prompt tokens: counted at ~70 + 100 before the answer, ~70 after
    results, _ = _drive(engine, _chats("x" * 200, 60))
    assert all(r.ok for r in results)
    most, count = busiest_window(srv.records()["usage"], WINDOW)
    assert most <= 1400 * 1.02, most
    # at the estimate alone (~170 tokens) a window holds 8 requests; corrected, up to 20
    assert count >= 10, count


def test_tpm_holds_when_the_server_counts_more_than_estimated(server: Any) -> None:
    # the provider counts 2 characters a token (our first guess: 4 / 1.25), so the first
    # estimate is short by ~40%; the first answer corrects it before more are sent
    srv = server(responder=TokenUsage(chars=2.0, completion=10))
    engine = _engine(srv, tpm=10000, sampling={"max_tokens": 10})
    results, _ = _drive(engine, _chats("y" * 2000, 40))
    assert all(r.ok for r in results)
    most, _ = busiest_window(srv.records()["usage"], WINDOW)
    assert most <= 10000 * 1.02, most
    assert engine._admission.rates.prompts.factor > 1.9  # type: ignore[union-attr]


def test_rpm_and_tpm_together_and_retries_count(server: Any) -> None:
    srv = server(responder=TokenUsage(), script=["503"] * 10)
    engine = _engine(srv, rpm=20, tpm=100000, backoff_base=0.01, sampling={"max_tokens": 50})
    results, _ = _drive(engine, _chats("hi", 40))
    assert all(r.ok for r in results)
    log = srv.records()["log"]
    most, _ = busiest_window([(t, 1.0) for t, _, _ in log], WINDOW)  # 503s count too
    assert len(log) == 50 and most <= 20 * 1.02, most


def test_window_budget_mechanics() -> None:
    budget = WindowBudget(10, 1.0)
    assert budget.wait_time(4, 0.0) == 0
    first = budget.spend(4, 0.0)
    budget.spend(4, 0.5)
    assert budget.wait_time(4, 0.6) == pytest.approx(0.4, abs=1e-3)  # when the first leaves
    budget.correct(first, 1)  # its answer used less than estimated
    assert budget.wait_time(4, 0.6) == 0
    assert budget.wait_time(30, 0.6) == pytest.approx(0.9, abs=1e-3)  # too big: an empty window
    assert budget.wait_time(30, 1.6) == 0


def test_prompt_estimate_learns_quickly_up_and_slowly_down() -> None:
    est = PromptEstimator()
    request = LMRequest(messages=[{"role": "user", "content": "z" * 400}], params=SamplingParams())
    raw = est.raw(request)
    est.learn(request, int(raw * 3))
    assert est.factor == pytest.approx(3 * 1.05, rel=0.01)
    est.learn(request, int(raw))
    assert 3.0 < est.factor < 3.15
