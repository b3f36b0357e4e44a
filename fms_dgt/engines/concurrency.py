"""How many requests an engine keeps in flight: a fixed number, or one it finds itself.

A hosted API rarely says how much concurrency it accepts; it answers 429 when it is
exceeded. Guessing high costs a storm of 429s and retries, guessing low leaves throughput
on the table, and the right number changes during a run (other users, other runs of the
same account). ``InFlightLimit`` with ``adaptive=True`` therefore does what TCP does with
its congestion window (AIMD):

* **slow start:** the limit starts at ``start`` and grows by one per answered request while
  the limit is what holds requests back (doubling every round trip), until the first 429
  or the ceiling;
* **multiplicative decrease:** a 429 sets the limit to ``decrease`` x the concurrency the
  rejected request was sent at (never below 1), once per congestion event: 429s of
  requests sent before the last decrease are the same event and do not lower it again;
* **additive increase:** afterwards each answer adds ``1 / limit`` (one per round trip),
  again only while the limit is what holds requests back, so an engine that is not busy
  does not talk itself into a limit it never tested;
* **Retry-After:** a 429 that says how long to wait stops new requests from starting until
  then (the server speaks for the whole engine, not only for the rejected request).

With ``adaptive=False`` the limit is fixed (the ``max_concurrency`` of engines that do not
adapt: in-process vLLM, test doubles). Waiters are served first come, first served.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger("fms_dgt.engines")

DEFAULT_DECREASE = 0.7
MAX_HOLD_SECONDS = 120.0  # a Retry-After beyond this is capped (a misconfigured server)


@dataclass
class Slot:
    """One admitted request: when it started and the concurrency it was sent at."""

    started: float
    inflight: int


@dataclass
class LimitStats:
    """What the limit did, for benchmarks, tests and the debug log."""

    admitted: int = 0
    overloaded: int = 0  # 429s seen
    decreases: int = 0
    held_seconds: float = 0.0  # time new requests were held back by Retry-After
    lowest: float = float("inf")
    history: collections.deque[tuple[float, float]] = field(
        default_factory=lambda: collections.deque(maxlen=4096)
    )  # (monotonic time, limit) after each change


class InFlightLimit:
    """A counting limit on requests in flight, fixed or adaptive (see the module docstring).

    Args:
        start: the limit at the start (clamped to ``ceiling``).
        ceiling: the limit never grows above this (the user's ``max_concurrency``).
        adaptive: adapt to 429s (AIMD); False keeps ``start`` for good.
        decrease: factor applied to the concurrency that met a 429.
    """

    def __init__(
        self, start: int, ceiling: int, *, adaptive: bool = True, decrease: float = DEFAULT_DECREASE
    ) -> None:
        if start < 1 or ceiling < 1:
            raise ValueError("in-flight limits must be >= 1")
        if not 0.0 < decrease < 1.0:
            raise ValueError("decrease must be between 0 and 1")
        self.ceiling = ceiling
        self.limit = float(min(start, ceiling))
        self.adaptive = adaptive
        self.decrease = decrease
        self.inflight = 0
        self.slow_start = adaptive
        self.stats = LimitStats(lowest=self.limit)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._hold_until = 0.0
        self._last_decrease = float("-inf")
        self._wake_handle: asyncio.TimerHandle | None = None

    @property
    def capacity(self) -> int:
        """Requests that may be in flight now."""
        return max(1, int(self.limit))

    async def acquire(self) -> Slot:
        """Wait for room (first come, first served) and take it."""
        if not self._waiters and self.inflight < self.capacity and time.monotonic() >= self._hold_until:
            return self._take()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        self._wake()  # a Retry-After hold with nobody in flight still needs its timer
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.inflight -= 1  # the slot was handed over just as we were cancelled
                self._wake()
            else:
                self._waiters.remove(waiter)
            raise
        slot = Slot(time.monotonic(), self.inflight)  # counted when it was handed over
        self.stats.admitted += 1
        return slot

    def release(self, slot: Slot, *, answered: bool, overloaded: bool, retry_after: float | None) -> None:
        """Give the slot back. ``answered``: the server produced an answer (it grows the
        limit); ``overloaded``: it said 429 (it lowers it)."""
        limited = bool(self._waiters) or self.inflight >= self.capacity
        self.inflight -= 1
        if self.adaptive:
            if overloaded:
                self._overloaded(slot, retry_after)
            elif answered and limited and self.limit < self.ceiling:
                self.limit = min(
                    float(self.ceiling), self.limit + (1.0 if self.slow_start else 1.0 / self.limit)
                )
                self._changed()
        self._wake()

    # ---- internals --------------------------------------------------------------------
    def _take(self) -> Slot:
        self.inflight += 1
        self.stats.admitted += 1
        return Slot(time.monotonic(), self.inflight)

    def _overloaded(self, slot: Slot, retry_after: float | None) -> None:
        now = time.monotonic()
        self.stats.overloaded += 1
        if retry_after is not None and retry_after > 0:
            until = now + min(retry_after, MAX_HOLD_SECONDS)
            if until > self._hold_until:
                self.stats.held_seconds += until - max(now, self._hold_until)
                self._hold_until = until
        if slot.started < self._last_decrease:
            return  # sent under the old limit: the same congestion event
        before = self.limit
        self.limit = max(1.0, min(self.limit, float(slot.inflight)) * self.decrease)
        self.slow_start = False
        self._last_decrease = now
        self.stats.decreases += 1
        self._changed()
        level = logging.INFO if self.stats.decreases == 1 else logging.DEBUG
        log.log(level, "the server answered 429: in-flight limit %.1f -> %.1f", before, self.limit)

    def _changed(self) -> None:
        self.stats.lowest = min(self.stats.lowest, self.limit)
        self.stats.history.append((time.monotonic(), self.limit))

    def _wake(self) -> None:
        """Hand free slots to waiters, unless a Retry-After holds new requests back."""
        wait = self._hold_until - time.monotonic()
        if wait > 0:
            if self._waiters and self._wake_handle is None:
                loop = asyncio.get_running_loop()
                self._wake_handle = loop.call_later(wait, self._wake_after_hold)
            return
        while self._waiters and self.inflight < self.capacity:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.inflight += 1
                waiter.set_result(None)

    def _wake_after_hold(self) -> None:
        self._wake_handle = None
        self._wake()
