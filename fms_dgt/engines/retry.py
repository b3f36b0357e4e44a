"""How one request is tried until it succeeds or its budgets run out: the single retry
policy every engine shares (so every backend retries, backs off and counts the same way).

Two budgets: transport failures (errors, timeouts) up to ``max_retries``, with jittered
exponential backoff that honours ``Retry-After``; structured output that does not parse or
validate up to ``max_parse_retries``, resent at once (the server answered; the output was
off); after that the request fails. A request that says ``keep_invalid`` is not resent: its
answer comes back at once with ``invalid`` set. ``attempts`` on the result counts every
request sent, so a failed record says how often the model was really asked. A request that
never succeeded becomes an ``LMResult`` with ``error`` set, never an exception and never
``None``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from fms_dgt.engines.admission import Ticket
from fms_dgt.engines.structured import check_structured
from fms_dgt.engines.types import EngineStats, LMRequest, LMResult
from fms_dgt.errors import EngineError, FatalEngineError, RetryableEngineError


def failed_result(
    error: str, *, attempts: int, model: str, prompt_tokens: int = 0, completion_tokens: int = 0
) -> LMResult:
    """The result of a request that failed for good (tokens spent on the way still count)."""
    return LMResult(
        error=error,
        attempts=attempts,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Budgets and pacing of one request's attempts."""

    max_retries: int = 4
    timeout: float = 120.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_parse_retries: int = 2

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before transport retry number ``attempt`` (1-based)."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay *= random.uniform(0.5, 1.0)  # full jitter keeps retries from arriving in lockstep
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max * 4))
        return delay

    async def run(
        self,
        send: Callable[[LMRequest], Awaitable[LMResult]],
        request: LMRequest,
        *,
        model: str,
        stats: EngineStats,
        admit: Callable[[LMRequest], AbstractAsyncContextManager[Ticket]] | None = None,
    ) -> LMResult:
        """Send ``request`` through ``send`` (one attempt, raising Retryable/Fatal engine
        errors) until it succeeds or a budget runs out; ``stats.retries`` counts resends.
        Each attempt runs inside ``admit(request)`` (the engine's in-flight and rate
        limits, ``admission.Admission.enter``), and the timeout counts from when it was
        admitted, not while it waited."""
        sent = transport_failures = parse_failures = 0
        prompt_tokens = completion_tokens = 0
        admit = admit or _admit_at_once

        def give_up(error: str) -> LMResult:  # the tokens spent on the way still count
            return failed_result(
                error,
                attempts=sent,
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )

        while True:
            sent += 1
            try:
                async with admit(request) as ticket:
                    result = await asyncio.wait_for(send(request), self.timeout)
                    ticket.answered(result)
            except asyncio.TimeoutError:
                error: EngineError = RetryableEngineError(f"timed out after {self.timeout:g}s")
            except FatalEngineError as exc:
                return give_up(f"{type(exc).__name__}: {exc}")
            except RetryableEngineError as exc:
                error = exc
            else:
                prompt_tokens += result.prompt_tokens
                completion_tokens += result.completion_tokens
                problem = check_structured(request.constraint, result)
                if problem is None:
                    result.attempts = sent
                    result.prompt_tokens, result.completion_tokens = prompt_tokens, completion_tokens
                    result.model = result.model or model
                    return result
                if request.keep_invalid:  # the builder keeps it as a rejection, with the text
                    result.attempts, result.invalid, result.parsed = sent, problem, None
                    result.prompt_tokens, result.completion_tokens = prompt_tokens, completion_tokens
                    result.model = result.model or model
                    return result
                parse_failures += 1
                if parse_failures > self.max_parse_retries:
                    return give_up(f"invalid structured output: {problem}")
                stats.retries += 1
                continue
            transport_failures += 1
            if transport_failures > self.max_retries:
                return give_up(f"{type(error).__name__}: {error}")
            stats.retries += 1
            await asyncio.sleep(self.backoff(transport_failures, error.retry_after))


@contextlib.asynccontextmanager
async def _admit_at_once(request: LMRequest) -> AsyncIterator[Ticket]:
    yield Ticket()
