"""The sqlite response cache: round trips, concurrency (threads and processes), crash
behaviour, and the end-to-end promise: a second identical run sends zero requests."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from fms_dgt.engines import LMRequest, LMResult, SamplingParams
from fms_dgt.engines.cache import ResponseCache, default_cache_path
from fms_dgt.engines.openai_engine import OpenAIEngine

ROOT = Path(__file__).resolve().parents[2]


def result(i: int) -> LMResult:
    return LMResult(
        texts=[f"text {i}"], finish_reasons=["stop"], prompt_tokens=i, completion_tokens=2, model="m"
    )


def test_round_trip_and_persistence(tmp_path):
    path = tmp_path / "c.sqlite"
    with ResponseCache.open(str(path)) as cache:
        assert cache.get("k") is None
        cache.put("k", result(1))
        hit = cache.get("k")  # served from the write buffer before any commit
        assert hit is not None and hit.texts == ["text 1"] and hit.cached
    with ResponseCache.open(path) as again:
        hit = again.get("k")
        assert hit is not None and hit.prompt_tokens == 1 and hit.cached and hit.model == "m"
        assert len(again) == 1


def test_failures_are_not_cached(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        cache.put("bad", LMResult(error="HTTP 503", attempts=5))
        assert cache.get("bad") is None and len(cache) == 0


def test_default_location_follows_dgt_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DGT_CACHE_DIR", str(tmp_path / "cachedir"))
    assert default_cache_path() == tmp_path / "cachedir" / "responses.sqlite"
    with ResponseCache.open(True) as cache:
        assert cache.path == tmp_path / "cachedir" / "responses.sqlite" and cache.path.exists()
    with pytest.raises(ValueError):
        ResponseCache.open(False)


def test_wal_mode_and_batched_commits(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path, batch_size=10, flush_seconds=60)
    for i in range(25):
        cache.put(f"k{i}", result(i))
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # two full batches are visible to another connection; the last 5 are still buffered
    assert other.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 20
    cache.close()
    assert other.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 25
    other.close()


def test_threads_share_one_cache(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite", batch_size=7)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(150):
                cache.put(f"{t}:{i}", result(i))
                got = cache.get(f"{t}:{i // 2}")
                assert got is not None and got.texts == [f"text {i // 2}"]
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    cache.close()
    with ResponseCache(tmp_path / "c.sqlite") as reopened:
        assert len(reopened) == 8 * 150


WRITER = textwrap.dedent(
    """
    import sys
    from fms_dgt.engines.cache import ResponseCache
    from fms_dgt.engines.types import LMResult
    path, tag, count, crash = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "crash"
    cache = ResponseCache(path, batch_size=8, flush_seconds=60)
    for i in range(count):
        cache.put(f"{tag}:{i}", LMResult(texts=[f"{tag} {i}"]))
        assert cache.get(f"{tag}:{i}") is not None
    if crash:
        import os
        os._exit(0)  # no close(): the buffered tail is lost, nothing else
    cache.close()
    """
)


def _writer(path: Path, tag: str, count: int, crash: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), tag, str(count), "crash" if crash else "ok"], cwd=ROOT
    )


def test_two_processes_write_one_file(tmp_path):
    path = tmp_path / "shared.sqlite"
    procs = [_writer(path, tag, 400) for tag in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with ResponseCache(path) as cache:
        assert len(cache) == 1200
        assert cache.get("b:399").texts == ["b 399"]  # type: ignore[union-attr]


def test_crash_loses_only_the_uncommitted_tail(tmp_path):
    path = tmp_path / "crash.sqlite"
    assert _writer(path, "x", 100, crash=True).wait(timeout=60) == 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    db.close()
    assert stored == 96  # 12 full batches of 8; the 4 buffered entries are gone


# ---- through an engine -----------------------------------------------------------------
def _requests() -> list[LMRequest]:
    chats = [
        LMRequest(
            messages=[{"role": "user", "content": f"Name a fruit ({i})."}],
            params=SamplingParams(max_tokens=12),
        )
        for i in range(6)
    ]
    # the same request twice is two samples (index 0 and 1), both cached separately
    repeat = LMRequest(prompt="Once upon a time", params=SamplingParams(max_tokens=8))
    return [*chats, repeat, repeat]


def _run_twice(url: str, model: str, cache_path: Path) -> tuple[list[LMResult], list[LMResult]]:
    runs = []
    for _ in range(2):
        engine = OpenAIEngine(model, base_url=url, cache=str(cache_path), timeout=120)

        async def go(engine: OpenAIEngine = engine) -> list[LMResult]:
            try:
                return await engine.agenerate_batch(_requests())
            finally:
                await engine.aclose()

        runs.append(asyncio.run(go()))
        runs.append(engine.stats)  # type: ignore[arg-type]
    first, first_stats, second, second_stats = runs
    assert first_stats.cached == 0 and second_stats.cached == 8 and second_stats.requests == 0  # type: ignore[attr-defined]
    return first, second  # type: ignore[return-value]


def test_second_run_sends_zero_requests_fake(fault_server, tmp_path):
    srv = fault_server()
    first, second = _run_twice(srv.url, "fake", tmp_path / "c.sqlite")
    assert srv.counts["requests"] == 8
    assert [r.texts for r in second] == [r.texts for r in first] and all(r.cached for r in second)


@pytest.mark.vllm
def test_second_run_sends_zero_requests_real(fault_server, vllm_server, tmp_path):
    proxy = fault_server(upstream=vllm_server)
    from fms_dgt.engines.default_model import DEFAULT_MODEL_NAME

    first, second = _run_twice(proxy.url, DEFAULT_MODEL_NAME, tmp_path / "c.sqlite")
    assert all(r.ok for r in first), [r.error for r in first]
    assert proxy.counts == {"requests": 8, "ok": 8}  # the second run added nothing
    assert [r.texts for r in second] == [r.texts for r in first]
    assert all(r.cached for r in second) and not any(r.cached for r in first)
