"""Budgets: the stopping criteria besides a record count.

A task may stop at ``max_cost_usd`` (US dollars, from the engines' prices), at
``max_tokens_total`` (prompt + completion tokens of answers not served from the cache) or
at ``max_seconds`` (seconds spent running the task). All three count the whole job: a
resumed task starts from what its earlier runs spent (``task_results.json``), so the same
command with a raised budget continues where the last run stopped, and with the same budget
stops again at once.

When a budget is spent, no new request is sent (the engine asks the task's ledger before
each one that the cache cannot answer, see ``Ledger.before_request``) and no new builder call
starts; requests already in flight finish and their records are kept. The task ends as
``budget_exhausted`` or ``time_limit``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fms_dgt.errors import DGTError

BUDGET_EXHAUSTED = "budget_exhausted"
TIME_LIMIT = "time_limit"


class BudgetExhausted(DGTError):
    """A task's budget is spent: ``status`` is ``budget_exhausted`` or ``time_limit``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Budget:
    """A task's limits (None: no limit) and the clock of the current run."""

    max_cost_usd: float | None = None
    max_tokens_total: int | None = None
    max_seconds: float | None = None
    seconds_before: float = 0.0  # spent by earlier runs of the task
    started: float = 0.0  # time.monotonic() at this run's start

    @property
    def limited(self) -> bool:
        return any(v is not None for v in (self.max_cost_usd, self.max_tokens_total, self.max_seconds))

    def seconds(self) -> float:
        """Seconds the task has run, over all its runs."""
        return self.seconds_before + (time.monotonic() - self.started if self.started else 0.0)

    def spent(self, cost_usd: float, tokens: int) -> BudgetExhausted | None:
        """Why the task must stop now (None: it may go on)."""
        if self.max_cost_usd is not None and cost_usd >= self.max_cost_usd:
            return BudgetExhausted(
                BUDGET_EXHAUSTED,
                f"spent ${cost_usd:.4f} of max_cost_usd ${self.max_cost_usd:g}; "
                "raise it and run the same command to continue",
            )
        if self.max_tokens_total is not None and tokens >= self.max_tokens_total:
            return BudgetExhausted(
                BUDGET_EXHAUSTED,
                f"used {tokens} of max_tokens_total {self.max_tokens_total} tokens; "
                "raise it and run the same command to continue",
            )
        if self.max_seconds is not None and self.seconds() >= self.max_seconds:
            return BudgetExhausted(
                TIME_LIMIT,
                f"ran {self.seconds():.1f} s of max_seconds {self.max_seconds:g} (over all runs); "
                "raise it and run the same command to continue",
            )
        return None
