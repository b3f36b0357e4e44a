"""Running builder calls without a batch barrier.

``CallPool`` keeps up to ``max_concurrent_calls`` builder calls in flight: async builders as
tasks on the running loop, plain ones in worker threads (with the caller's context, so the
engines report to the right task). Results are handed back one by one as they finish.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from fms_dgt.budget import BudgetExhausted
from fms_dgt.builders.base import DataBuilder
from fms_dgt.engines.base import Engine, use_sink
from fms_dgt.engines.types import LMRequest, LMResult
from fms_dgt.errors import ConfigError, EngineStartError, RetryableEngineError
from fms_dgt.ledger import Ledger


class CallSink:
    """Forwards a call's request results to the task's ledger and remembers whether any of
    them failed transiently (a server outage), which makes the call's output incomplete."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.transient_failures = 0

    def before_request(self, engine: Engine, request: LMRequest) -> None:
        self.ledger.before_request(engine, request)

    def on_result(self, engine: Engine, request: LMRequest, result: LMResult) -> None:
        self.ledger.on_result(engine, request, result)
        if not result.ok and (result.error or "").startswith(RetryableEngineError.__name__):
            self.transient_failures += 1


async def call_builder(
    builder: DataBuilder,
    ledger: Ledger,
    executor: ThreadPoolExecutor,
    request_idx: int,
    inputs: list[Any],
    sink: CallSink | None = None,
) -> list[Any] | None:
    """One builder call; returns its records, or None if it raised (recorded as a failure)."""
    try:
        with use_sink(sink or ledger):
            if builder.is_async:
                outputs = await cast(Awaitable[list[Any]], builder(request_idx, inputs))
            else:
                ctx = contextvars.copy_context()
                loop = asyncio.get_running_loop()
                call = functools.partial(ctx.run, builder, request_idx, inputs)
                outputs = cast(list[Any], await loop.run_in_executor(executor, call))
    except (asyncio.CancelledError, EngineStartError, ConfigError):
        raise  # no later call can do better: the task stops with this message
    except BudgetExhausted:
        raise  # the task's budget is spent: the run stops submitting; nothing here failed
    except Exception as exc:  # a bug or an unexpected failure in user code: record, keep going
        ledger.builder_failed(request_idx, exc)
        return None
    ledger.call_finished()
    return list(outputs or [])


class CallPool:
    """A bounded set of in-flight coroutines, drained as they complete."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight: set[asyncio.Task[Any]] = set()

    @property
    def has_room(self) -> bool:
        return len(self.inflight) < self.limit

    def submit(self, coro: Awaitable[Any]) -> None:
        self.inflight.add(asyncio.ensure_future(coro))

    async def next_done(self, on_done: Callable[[Any], None]) -> None:
        """Wait for at least one call to finish; ``on_done(result)`` for each finished one."""
        if not self.inflight:
            return
        done, self.inflight = await asyncio.wait(self.inflight, return_when=asyncio.FIRST_COMPLETED)
        error: BaseException | None = None
        for task in done:
            # every finished task is looked at, so a task-stopping error that several calls
            # hit at once is raised once, not logged again as "exception never retrieved"
            exc = task.exception()
            if exc is not None:
                error = error or exc
            elif error is None:
                on_done(task.result())
        if error is not None:
            raise error

    async def cancel_all(self) -> None:
        for task in self.inflight:
            task.cancel()
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)
        self.inflight.clear()
