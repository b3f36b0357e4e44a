"""The per-task ledger: the one owner of a task's counts, and the writer of what happens to
its records (accepted into ``data``, rejected with block and reason, failed with the error).

Counts: records accepted into ``data`` (``accepted``), the records that count towards the
target (``kept``: after the last postprocessing pass, plus those accepted since), rejected
and failed records, builder calls, and requests and tokens per engine. A resumed task
starts from its previous run's totals (``carry_over``), so task_results describe the whole
job. The runs, the summary, ``task_results.json``, the progress display and the report
read the counts from here.

The ledger is also the ``ResultSink`` engines report to, so tokens are counted per task and
engine and failed requests are recorded. Deciding *whether* a record is accepted is the
filter chain's job (``fms_dgt.blocks.chain``), not the ledger's.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from fms_dgt.budget import Budget, BudgetExhausted
from fms_dgt.config.env import redact, redact_all
from fms_dgt.datapoint import DataPoint, as_dict
from fms_dgt.engines.types import EngineStats, LMRequest, LMResult
from fms_dgt.errors import FatalEngineError, RetryableEngineError

if TYPE_CHECKING:
    from fms_dgt.datastores.roles import TaskStores
    from fms_dgt.engines.base import Engine
    from fms_dgt.state import TaskState

log = logging.getLogger("fms_dgt.run")
SYNC_EVERY_SECONDS = 2.0


def reason_kind(reason: str) -> str:
    """What a rejection reason or an error says before its first colon, which groups
    ``too short: 12 < 20 chars`` with every other ``too short``."""
    return str(reason).split(":", 1)[0].strip()[:80]


class Ledger:
    """Counts and stores everything that happens to one task's records."""

    def __init__(self, task_name: str, stores: TaskStores, state: TaskState) -> None:
        self.task_name = task_name
        self.stores = stores
        self.state = state  # holds what the last postprocessing pass covered and kept
        self.data = stores.data
        self.rejected = stores.rejected
        self.failed = stores.failed
        self.accepted = 0  # records in data
        self.rejected_count = 0
        self.failed_count = 0
        self.calls = 0
        # requests that succeeded / failed after all retries, by kind of failure: the runs
        # tell a server outage (transient) and a wrong endpoint (fatal) from a stall
        self.engine_ok = 0
        self.engine_transient_failures = 0
        self.engine_fatal_failures = 0
        self.last_engine_error: str | None = None
        self.rejected_by_block: dict[str, Counter[str]] = defaultdict(Counter)
        self.engine_stats: dict[str, EngineStats] = defaultdict(EngineStats)
        self.budget = Budget()  # the runtime sets the task's limits
        self._builder_error_logged = False
        self._last_sync = time.monotonic()

    # ---- counts ---------------------------------------------------------------------
    @property
    def kept(self) -> int:
        """Records that count towards the target: what the last postprocessing pass kept,
        plus everything accepted after the records it covered."""
        state = self.state
        if not state.postprocessed_upto:
            return self.accepted
        return state.postprocessed_kept + (self.accepted - state.postprocessed_upto)

    def requests(self) -> int:
        return sum(s.requests for s in self.engine_stats.values())

    def tokens(self) -> dict[str, int]:
        return {
            "prompt": sum(s.prompt_tokens for s in self.engine_stats.values()),
            "completion": sum(s.completion_tokens for s in self.engine_stats.values()),
        }

    def completion_tokens(self) -> int:
        return self.tokens()["completion"]

    def cost_usd(self) -> float:
        return sum(s.cost_usd for s in self.engine_stats.values())

    def billed_tokens(self) -> int:
        return sum(s.billed_tokens for s in self.engine_stats.values())

    def over_budget(self) -> BudgetExhausted | None:
        """Why the task must stop (its budget or time limit is spent), or None."""
        if not self.budget.limited:
            return None
        return self.budget.spent(self.cost_usd(), self.billed_tokens())

    # ---- records --------------------------------------------------------------------
    def record_accepted(self, record: DataPoint | dict[str, Any]) -> None:
        """Append an accepted record to ``data`` (flushed before it counts)."""
        self.data.save_data([as_dict(record)])
        self.accepted += 1
        self._maybe_sync()

    def reject(self, record: Any, block: str, reason: str, stage: str = "generation") -> None:
        reason = redact(reason)  # a block's reason may quote its configuration
        self.rejected.save_data(
            [{"record": as_dict(record), "block": block, "reason": reason, "stage": stage}]
        )
        self.rejected_count += 1
        self.rejected_by_block[block][reason_kind(reason)] += 1

    def builder_failed(self, request_idx: int, exc: BaseException) -> None:
        """A builder call raised: record it (the run goes on; stalls are detected upstream).
        The first such error of the task is logged (with the traceback at debug level)."""
        if not self._builder_error_logged:
            self._builder_error_logged = True
            log.error(
                "%s: builder call %d raised %s: %s",
                self.task_name,
                request_idx,
                type(exc).__name__,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
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

    def call_finished(self) -> None:
        self.calls += 1

    # ---- ResultSink ---------------------------------------------------------------------
    def before_request(self, engine: Engine, request: LMRequest) -> None:
        """Called by the engine before it sends a request the cache cannot answer: raises
        ``BudgetExhausted`` once the task's budget is spent, so nothing more is sent."""
        stop = self.over_budget()
        if stop is not None:
            raise stop

    def on_result(self, engine: Engine, request: LMRequest, result: LMResult) -> None:
        stats = self.engine_stats[engine.name]
        if result.cached:
            stats.cached += 1
        else:
            stats.requests += 1
            stats.retries += max(0, result.attempts - 1)
            stats.billed_tokens += result.prompt_tokens + result.completion_tokens
            stats.cost_usd += engine.cost(result)
        stats.prompt_tokens += result.prompt_tokens
        stats.completion_tokens += result.completion_tokens
        if result.ok:
            self.engine_ok += 1
            return
        stats.failed += 1
        self.failed_count += 1
        error = redact(result.error or "")
        self.last_engine_error = error
        # the engine base class reports "<ExceptionType>: message"
        if error.startswith(RetryableEngineError.__name__):
            self.engine_transient_failures += 1
        elif error.startswith(FatalEngineError.__name__):
            self.engine_fatal_failures += 1
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
        types = {f.name: float if f.name == "cost_usd" else int for f in dataclasses.fields(EngineStats)}
        for name, stats in (previous.get("engines") or {}).items():
            if isinstance(stats, dict):
                earlier = EngineStats()
                for key, value in stats.items():
                    if key in types:
                        setattr(earlier, key, types[key](value))
                self.engine_stats[name].add(earlier)
        self.calls += int((previous.get("counts") or {}).get("calls") or 0)
        self.budget.seconds_before = float(previous.get("total_seconds") or 0.0)
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

    def count_stored(self) -> None:
        """Start the rejected and failed counts from their stores (every earlier run's)."""
        self.rejected_count = self.rejected.count()
        self.failed_count = self.failed.count()

    def counts(self) -> dict[str, int]:
        """The record counts of task_results."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected_count,
            "failed": self.failed_count,
            "final": self.state.final_count,
            "calls": self.calls,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "rejected_by_block": {b: dict(c) for b, c in self.rejected_by_block.items()},
            "engines": {n: s.to_dict() for n, s in self.engine_stats.items()},
            "tokens": self.tokens(),
            "requests": self.requests(),
            "cost_usd": round(self.cost_usd(), 6),
            "total_seconds": round(self.budget.seconds(), 3),
        }
