"""Requests-per-minute and tokens-per-minute limits of a hosted API, kept on our side.

A provider counts what an account sends in a sliding minute and answers 429 beyond its
quota. Finding the quota by provoking 429s wastes requests and retries; when the user knows
it (``rpm``, ``tpm`` on the engine block) the engine never exceeds it instead.

``WindowBudget`` is a sliding log, not a token bucket: a bucket that refills at
``limit / 60`` per second allows up to twice the limit in some minute (a full bucket spent
at once, then a minute of refill), which is exactly the burst a provider rejects. The log
admits a request only if the units spent in the last ``window`` seconds plus its own stay
within the limit, so every sliding window holds. Two refinements:

* a request counts from when it was really written to the connection (the ``fast``
  transport reports it; otherwise from admission) and cannot leave the window before
  that, and the window is kept ``WINDOW_MARGIN`` seconds longer than the provider's: a
  busy event loop that sends an admitted request late, or a varying network delay, cannot
  squeeze one window's requests into another's (0.5 s of a minute costs under 1% of the
  throughput);
* no quarter of a window may hold more than half the limit, so a run does not open with a
  whole minute's budget in one burst (providers also enforce their limits over shorter
  periods).

Tokens are not known before the answer. A request is admitted at an estimate: its prompt
(characters, with a factor learned from the usage the server reports, starting
conservatively) plus its maximum completion (``max_tokens`` x ``n``). When the answer comes
back, its spend is corrected to the real prompt + completion tokens, so the estimate only
holds budget while the request is in flight. Until the first attempt is over, only one
request is in flight under a ``tpm``: a server that counts prompts very differently from
the estimate then corrects it before a whole window's worth is sent at the guess. A single request larger than the whole limit
is admitted alone into an empty window (the provider decides about it).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from dataclasses import dataclass

from fms_dgt.engines.types import LMRequest

log = logging.getLogger("fms_dgt.engines")

WINDOW_SECONDS = 60.0
WINDOW_MARGIN = 0.5  # seconds: the enforced window is this much longer than the provider's
_CHARS_PER_TOKEN = 4.0
_TOKENS_PER_MESSAGE = 4  # role and separators of a chat message
_START_FACTOR = 1.25  # English is ~4 characters a token; start on the safe side
_EPSILON = 1e-6
_PENDING_POLL = 0.02  # seconds between looks while an admitted request is not sent yet


@dataclass
class Spend:
    """Units spent at ``at`` (monotonic seconds); ``live`` while in the window's log;
    ``sent`` once the request has left (until then it cannot leave the window)."""

    at: float
    cost: float
    sent: bool = True
    live: bool = True


class WindowBudget:
    """At most ``limit`` units in any ``window`` seconds (see the module docstring)."""

    def __init__(self, limit: float, window: float) -> None:
        if limit <= 0 or window <= 0:
            raise ValueError("a window budget needs a positive limit and window")
        self.limit = float(limit)
        self.window = float(window)
        self.total = 0.0
        self._log: collections.deque[Spend] = collections.deque()

    def wait_time(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` fits (0: now)."""
        self._expire(now)
        excess = self.total + cost - self.limit
        if excess <= _EPSILON or not self._log:
            return 0.0
        freed = 0.0
        for spend in self._log:  # oldest first: the first ones to leave the window
            if not spend.sent:
                return _PENDING_POLL  # it may leave only once sent: look again shortly
            freed += spend.cost
            if freed >= excess - _EPSILON:
                return spend.at + self.window - now + _EPSILON
        return self._log[-1].at + self.window - now + _EPSILON  # all of it: an empty window

    def spend(self, cost: float, now: float, *, sent: bool = True) -> Spend:
        entry = Spend(now, float(cost), sent)
        self._log.append(entry)
        self.total += entry.cost
        return entry

    @staticmethod
    def mark_sent(entry: Spend, now: float) -> None:
        """The request has left (at ``now``, after its admission): it counts from now. The
        log may go slightly out of order; an entry then leaves no earlier than the ones
        before it, which only errs on the safe side."""
        entry.at = max(entry.at, now)
        entry.sent = True

    def correct(self, entry: Spend, cost: float) -> None:
        """Replace an estimate with what was really spent (if it is still in the window)."""
        if entry.live:
            self.total += cost - entry.cost
        entry.cost = float(cost)

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        log_ = self._log
        while log_ and log_[0].at <= horizon and log_[0].sent:
            entry = log_.popleft()
            entry.live = False
            self.total -= entry.cost
        if not log_:
            self.total = 0.0  # no drift from float sums


class PromptEstimator:
    """Prompt tokens from characters, with a factor learned from reported usage: it rises
    at once when the server counts more than estimated and eases down slowly."""

    def __init__(self) -> None:
        self.factor = _START_FACTOR

    @staticmethod
    def raw(request: LMRequest) -> float:
        if request.messages is None:
            return len(request.prompt or "") / _CHARS_PER_TOKEN + 1
        chars = 0
        for message in request.messages:
            content = message.get("content")
            if isinstance(content, list):  # content parts: count the text ones
                chars += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
            elif content is not None:
                chars += len(str(content))
        return chars / _CHARS_PER_TOKEN + _TOKENS_PER_MESSAGE * len(request.messages) + 3

    def estimate(self, request: LMRequest) -> float:
        return math.ceil(self.raw(request) * self.factor)

    def learn(self, request: LMRequest, actual: int) -> None:
        raw = self.raw(request)
        if actual <= 0 or raw <= 0:
            return
        target = min(20.0, max(0.1, actual / raw * 1.05))
        self.factor = target if target > self.factor else self.factor + 0.02 * (target - self.factor)


@dataclass
class RateTicket:
    """What one admitted request holds in the budgets, corrected by ``RateLimits.finish``."""

    request: LMRequest
    request_spends: list[tuple[WindowBudget, Spend]]
    token_spends: list[tuple[WindowBudget, Spend]]

    def sent(self) -> None:
        """The request was just written to the connection: it counts from now."""
        now = time.monotonic()
        for _, spend in self.request_spends + self.token_spends:
            WindowBudget.mark_sent(spend, now)

    def _mark_unsent(self) -> None:
        now = time.monotonic()
        for _, spend in self.request_spends + self.token_spends:
            if not spend.sent:
                WindowBudget.mark_sent(spend, now)


class RateLimits:
    """``rpm`` requests and ``tpm`` tokens per ``window`` seconds (either may be None).

    Args:
        rpm: requests per window.
        tpm: prompt + completion tokens per window.
        window: the provider's window in seconds (60; tests shrink it).
        reports_sent: the transport reports when each request is written (``sent``);
            otherwise a request counts from its admission.
    """

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None,
        window: float = WINDOW_SECONDS,
        *,
        reports_sent: bool = False,
    ) -> None:
        self.reports_sent = reports_sent
        kept = window + WINDOW_MARGIN
        self.rpm = rpm
        self.tpm = tpm
        self._requests = self._tiers(rpm, kept)
        self._tokens = self._tiers(tpm, kept)
        self.prompts = PromptEstimator()
        self._lock: asyncio.Lock | None = None
        self._calibrated: asyncio.Event | None = None
        self._warned_oversized = False
        self.waited_seconds = 0.0

    @staticmethod
    def _tiers(limit: float | None, window: float) -> list[WindowBudget]:
        if limit is None:
            return []
        return [WindowBudget(limit, window), WindowBudget(limit / 2.0, window / 4.0)]

    def estimate(self, request: LMRequest) -> float:
        """Tokens ``request`` may cost: its prompt plus every completion at ``max_tokens``."""
        sampling = request.sampling
        return self.prompts.estimate(request) + sampling.max_tokens * max(1, sampling.n)

    async def take(self, request: LMRequest) -> RateTicket:
        """Wait until ``request`` fits every budget, then spend it (first come, first served)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
            self._calibrated = asyncio.Event()
        async with self._lock:
            assert self._calibrated is not None
            if self._tokens and self._tokens[0].total > 0 and not self._calibrated.is_set():
                await self._calibrated.wait()  # the first answer corrects the estimate first
            # estimated now, not on arrival: with what the answers before it taught
            tokens = self.estimate(request) if self._tokens else 0.0
            if self.tpm is not None and tokens > self.tpm and not self._warned_oversized:
                self._warned_oversized = True
                log.warning(
                    "a request may use ~%d tokens, more than tpm %g: it is sent alone in its window",
                    tokens,
                    self.tpm,
                )
            while True:
                now = time.monotonic()
                if self._tokens:
                    tokens = self.estimate(request)  # answers that came back meanwhile teach it
                wait = max(
                    [b.wait_time(1.0, now) for b in self._requests]
                    + [b.wait_time(tokens, now) for b in self._tokens]
                    + [0.0]
                )
                if wait <= 0:
                    break
                self.waited_seconds += wait
                await asyncio.sleep(wait)
            sent = not self.reports_sent
            requests = [(budget, budget.spend(1.0, now, sent=sent)) for budget in self._requests]
            spends = [(budget, budget.spend(tokens, now, sent=sent)) for budget in self._tokens]
        return RateTicket(request, requests, spends)

    def finish(self, ticket: RateTicket, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """The attempt is over. A request never reported as sent counts from now; the
        token estimate is replaced by the usage the server reported (0, 0: unknown, the
        estimate stays)."""
        ticket._mark_unsent()
        if self._calibrated is not None:
            self._calibrated.set()
        if prompt_tokens <= 0 and completion_tokens <= 0:
            return
        self.prompts.learn(ticket.request, prompt_tokens)
        for budget, spend in ticket.token_spends:
            budget.correct(spend, prompt_tokens + completion_tokens)
