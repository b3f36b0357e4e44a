"""The per-task ledger: the single place a record becomes accepted, rejected or failed.

It applies the filters to each record as it arrives, appends accepted records to ``data``
(flushed before they count), writes rejections with the block and reason, records LLM
requests that failed after retries, and keeps the counters that go into task_results.
It is also the ResultSink engines report to, so tokens are counted per task and engine.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections import Counter, defaultdict
from typing import Any

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.config.yaml_loader import redact, redact_all
from fms_dgt.datapoint import DataPoint, as_dict
from fms_dgt.engines.base import Engine, use_sink
from fms_dgt.engines.types import EngineStats, LMRequest, LMResult
from fms_dgt.errors import RetryableEngineError
from fms_dgt.task import Task

SYNC_EVERY_SECONDS = 2.0


class TaskLedger:
    """Counts and stores everything that happens to one task's records."""

    def __init__(self, task: Task, filters: list[FilterBlock]) -> None:
        self.task = task
        self.filters = filters
        # filters that override acheck may await (LLM judges); run them before the sync ones so
        # the dedup check and its accept happen with no await in between
        self.async_filters = [f for f in filters if type(f).acheck is not FilterBlock.acheck]
        self.sync_filters = [f for f in filters if f not in self.async_filters]
        self.data = task.datastore("data")
        self.rejected = task.datastore("rejected", output_data_format="jsonl")
        self.failed = task.datastore("failed", output_data_format="jsonl")
        self.accepted = 0
        self.rejected_count = 0
        self.failed_count = 0
        self.calls = 0
        # requests that succeeded / failed after all retries on transient errors (5xx, 429,
        # timeouts, dropped connections): the generation loop tells an outage from a stall
        self.engine_ok = 0
        self.engine_transient_failures = 0
        self.last_engine_error: str | None = None
        self.rejected_by_block: dict[str, Counter[str]] = defaultdict(Counter)
        self.engine_stats: dict[str, EngineStats] = defaultdict(EngineStats)
        self._last_sync = time.monotonic()

    # ---- records --------------------------------------------------------------------
    async def offer(self, record: DataPoint | dict[str, Any], stage: str = "generation") -> bool:
        """Run the filters on ``record``; append it to ``data`` if all pass."""
        for block in self.async_filters:
            try:
                with use_sink(self):  # a judge's requests count as this task's, failures recorded
                    reason = await block.acheck(record)
            except Exception as exc:  # a broken block rejects (visibly), it does not kill the run
                reason = f"block error: {type(exc).__name__}: {exc}"
            if reason is not None:
                self.reject(record, block.name, reason, stage)
                return False
        for block in self.sync_filters:
            try:
                reason = block.check(record)
            except Exception as exc:
                reason = f"block error: {type(exc).__name__}: {exc}"
            if reason is not None:
                self.reject(record, block.name, reason, stage)
                return False
        for block in self.filters:
            block.accept(record)
        self.data.save_data([as_dict(record)])
        self.accepted += 1
        self._maybe_sync()
        return True

    def reject(self, record: Any, block: str, reason: str, stage: str = "generation") -> None:
        reason = redact(reason)  # a block's reason may quote its configuration
        self.rejected.save_data(
            [{"record": as_dict(record), "block": block, "reason": reason, "stage": stage}]
        )
        self.rejected_count += 1
        self.rejected_by_block[block][_reason_key(reason)] += 1

    def builder_failed(self, request_idx: int, exc: BaseException) -> None:
        """A builder call raised: record it (the run goes on; stalls are detected upstream)."""
        tb = redact("".join(traceback.format_exception_only(type(exc), exc)).strip())
        self.failed.save_data(
            [
                {
                    "request": {"request_idx": request_idx},
                    "error": tb,
                    "attempts": 1,
                    "engine": None,
                    "stage": "builder",
                }
            ]
        )
        self.failed_count += 1

    # ---- ResultSink ---------------------------------------------------------------------
    def on_result(self, engine: Engine, request: LMRequest, result: LMResult) -> None:
        stats = self.engine_stats[engine.name]
        if result.cached:
            stats.cached += 1
        else:
            stats.requests += 1
            stats.retries += max(0, result.attempts - 1)
        stats.prompt_tokens += result.prompt_tokens
        stats.completion_tokens += result.completion_tokens
        if result.ok:
            self.engine_ok += 1
        else:
            stats.failed += 1
            self.failed_count += 1
            error = redact(result.error or "")
            self.last_engine_error = error
            # the engine base class reports "<ExceptionType>: message"
            if error.startswith(RetryableEngineError.__name__):
                self.engine_transient_failures += 1
            self.failed.save_data(
                [
                    {
                        "request": redact_all(request.to_dict()),  # prompts may hold expanded config
                        "error": error,
                        "attempts": result.attempts,
                        "engine": engine.name,
                        "stage": "engine",
                    }
                ]
            )

    def carry_over(self, previous: dict[str, Any]) -> None:
        """Start from the totals in the task's previous ``task_results`` (requests, tokens,
        retries per engine, builder calls, rejections by block), so a resumed task reports
        the whole job, not only its last run. (Rejected and failed *records* are counted
        from their stores, which already hold every run's.)"""
        known = {f.name for f in dataclasses.fields(EngineStats)}
        for name, stats in (previous.get("engines") or {}).items():
            if isinstance(stats, dict):
                self.engine_stats[name].add(
                    EngineStats(**{k: int(v) for k, v in stats.items() if k in known})
                )
        self.calls += int((previous.get("counts") or {}).get("calls") or 0)
        for block, reasons in (previous.get("rejected_by_block") or {}).items():
            if isinstance(reasons, dict):
                self.rejected_by_block[block].update({str(k): int(v) for k, v in reasons.items()})

    # ---- durability and reporting -------------------------------------------------------
    def _maybe_sync(self) -> None:
        now = time.monotonic()
        if now - self._last_sync >= SYNC_EVERY_SECONDS:
            self.sync()
            self._last_sync = now

    def sync(self) -> None:
        self.data.sync()
        self.rejected.sync()
        self.failed.sync()

    def tokens(self) -> dict[str, int]:
        return {
            "prompt": sum(s.prompt_tokens for s in self.engine_stats.values()),
            "completion": sum(s.completion_tokens for s in self.engine_stats.values()),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "rejected_by_block": {b: dict(c) for b, c in self.rejected_by_block.items()},
            "engines": {n: s.to_dict() for n, s in self.engine_stats.items()},
            "tokens": self.tokens(),
            "requests": sum(s.requests for s in self.engine_stats.values()),
        }


def _reason_key(reason: str) -> str:
    """Group reasons like 'too short: 12 < 20 chars' under 'too short'."""
    return reason.split(":", 1)[0].strip()[:80]
