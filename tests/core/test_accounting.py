"""Accounting: tokens and request counts per task and per engine in task_results, and the
request/token rates the progress display shows (bars on a terminal, log lines otherwise)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from fms_dgt import progress as progress_module
from fms_dgt.config.overrides import Overrides
from fms_dgt.engines.types import EngineStats
from fms_dgt.progress import Progress
from fms_dgt.runtime import Runtime

from .helpers import FIXTURE_BUILDERS, write_task


def test_two_tasks_sharing_an_engine_count_only_their_own_requests(tmp_path) -> None:
    """Both tasks use the same engine instance; each task's results must hold its own
    requests and tokens (results are routed per task, not read off the shared engine)."""
    a = write_task(
        tmp_path / "a", name="ta", runner_config={"num_outputs_to_generate": 7, "max_concurrent_calls": 2}
    )
    b = write_task(
        tmp_path / "b", name="tb", runner_config={"num_outputs_to_generate": 13, "max_concurrent_calls": 3}
    )
    rt = Runtime(
        [str(a), str(b)], [str(FIXTURE_BUILDERS)], output_dir=tmp_path / "out", overrides=Overrides()
    )
    rt.prepare()
    outcomes = {o.results["task_name"]: o.results for o in asyncio.run(rt.run())}
    assert set(outcomes) == {"ta", "tb"}
    shared = {id(e) for pt in rt.prepared for e in pt.builder.engines}  # type: ignore[attr-defined]
    assert len(shared) == 1, "the two tasks should share one engine instance"
    engine = next(iter(pt.builder.engines[0] for pt in rt.prepared))  # type: ignore[attr-defined]
    per_task = [outcomes[t]["engines"]["llm1"] for t in ("ta", "tb")]
    for res, target, inflight in zip((outcomes["ta"], outcomes["tb"]), (7, 13), (2, 3)):
        llm = res["engines"]["llm1"]
        assert target <= llm["requests"] <= target + inflight  # calls in flight at the end may overshoot
        assert llm["prompt_tokens"] > 0 and llm["completion_tokens"] > 0
        assert res["requests"] == llm["requests"]
        assert res["tokens"] == {"prompt": llm["prompt_tokens"], "completion": llm["completion_tokens"]}
    # the engine's own counters are the sum over tasks
    assert engine.stats.requests == sum(s["requests"] for s in per_task)
    assert engine.stats.completion_tokens == sum(s["completion_tokens"] for s in per_task)


def test_progress_log_lines_show_rates_without_a_terminal(monkeypatch, caplog) -> None:
    monkeypatch.setattr(progress_module, "LOG_EVERY_SECONDS", 0.0)
    progress = Progress(use_bars=False)
    progress.start("t1", total=4)
    ledger = SimpleNamespace(engine_stats={"llm1": EngineStats(requests=8, completion_tokens=320)})
    with caplog.at_level(logging.INFO, logger="fms_dgt.progress"):
        progress.advance("t1", 2, ledger)
    line = caplog.messages[-1]
    assert line.startswith("t1: 2/4 records")
    assert "records/s" in line and "req/s" in line and "tok/s" in line


def test_rates_cover_the_recent_window_not_the_start_up(monkeypatch, caplog) -> None:
    """A model that takes 100 s to load must not make the rates read ~0 for the whole run."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(progress_module, "LOG_EVERY_SECONDS", 0.0)
    progress = Progress(use_bars=False)
    progress.start("t1", total=100)
    stats = EngineStats()
    ledger = SimpleNamespace(engine_stats={"llm1": stats})
    with caplog.at_level(logging.INFO, logger="fms_dgt.progress"):
        for second in range(100, 161, 10):  # loading until t=100, then 1 request/s, 100 tok/s
            clock["now"] = 1000.0 + second
            stats.requests, stats.completion_tokens = second - 100, (second - 100) * 100
            progress.advance("t1", 1, ledger)
    assert caplog.messages[-1].endswith("(0.1 records/s, 1 req/s, 100 tok/s)"), caplog.messages[-1]


@pytest.mark.parametrize(
    ("rate", "text"),
    [(0.0, "0"), (0.04567, "0.046"), (1.25, "1.2"), (12.34, "12.3"), (12.0, "12"), (512.4, "512")],
)
def test_rates_keep_two_significant_digits(rate: float, text: str) -> None:
    assert progress_module._fmt(rate) == text


@pytest.mark.parametrize("use_bars", [True, False])
def test_disabled_progress_prints_nothing(use_bars, capsys, caplog) -> None:
    progress = Progress(enabled=False, use_bars=use_bars)
    progress.start("t1", total=2)
    with caplog.at_level(logging.INFO, logger="fms_dgt.progress"):
        progress.advance("t1", 2, None)
    progress.close()
    assert not caplog.messages
