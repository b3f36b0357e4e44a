"""What an attempt must get before it is sent: a place in flight, then room in the rate
limits, in that order (so the rate budget is spent when the request really leaves, not
while it queues for a slot).

``Admission.enter(request)`` is the context every attempt runs in (``RetryPolicy.run``).
Leaving it tells the in-flight limit how the attempt went (answered, or 429 with its
Retry-After) and corrects the token estimate with the usage the answer reported
(``Ticket.answered``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fms_dgt.engines.concurrency import InFlightLimit
from fms_dgt.engines.rate_limits import RateLimits, RateTicket
from fms_dgt.engines.types import LMRequest, LMResult
from fms_dgt.errors import RetryableEngineError

# called by a transport when the attempt's request has been written to the connection (set
# around each attempt that is rate limited; see ``RateTicket.sent``)
REQUEST_SENT: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "dgt_request_sent", default=None
)


@dataclass
class Ticket:
    """One admitted attempt; the retry loop hands it the attempt's result."""

    rate: RateTicket | None = None
    result: LMResult | None = None

    def answered(self, result: LMResult) -> None:
        self.result = result


class Admission:
    """An in-flight limit and optional rate limits, entered once per attempt."""

    def __init__(self, limit: InFlightLimit, rates: RateLimits | None = None) -> None:
        self.limit = limit
        self.rates = rates

    @contextlib.asynccontextmanager
    async def enter(self, request: LMRequest) -> AsyncIterator[Ticket]:
        slot = await self.limit.acquire()
        ticket = Ticket()
        answered = overloaded = False
        retry_after: float | None = None
        reporting: contextvars.Token[Callable[[], None] | None] | None = None
        try:
            if self.rates is not None:
                ticket.rate = await self.rates.take(request)
                reporting = REQUEST_SENT.set(ticket.rate.sent)
            yield ticket
            answered = True
        except RetryableEngineError as exc:
            overloaded = exc.status == 429
            retry_after = exc.retry_after
            raise
        finally:
            if reporting is not None:
                REQUEST_SENT.reset(reporting)
            self.limit.release(slot, answered=answered, overloaded=overloaded, retry_after=retry_after)
            if self.rates is not None and ticket.rate is not None:
                result = ticket.result
                usage = (result.prompt_tokens, result.completion_tokens) if result is not None else (0, 0)
                self.rates.finish(ticket.rate, *usage)
