"""Spreading requests over several copies of the same model (engine replicas).

The choice is least-requests-in-flight, ties broken round robin: a slow replica (a long
generation, a GC pause) stops receiving new work until it catches up, which keeps every
replica busy without any replica building a queue. Used by the ``openai`` engine when it
is given several base URLs and by ``vllm-server`` with ``replicas > 1``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class ReplicaSet(Generic[T]):
    """A fixed list of members, each with a count of requests in flight."""

    def __init__(self, members: Sequence[T]) -> None:
        if not members:
            raise ValueError("a replica set needs at least one member")
        self.members = list(members)
        self.inflight = [0] * len(self.members)
        self.served = [0] * len(self.members)
        self._next = 0

    def __len__(self) -> int:
        return len(self.members)

    def pick(self) -> int:
        """Index of the member to use next (least in flight, round robin among equals)."""
        n = len(self.members)
        if n == 1:
            return 0
        best, best_load = self._next, self.inflight[self._next]
        for step in range(1, n):
            i = (self._next + step) % n
            if self.inflight[i] < best_load:
                best, best_load = i, self.inflight[i]
        self._next = (best + 1) % n
        return best

    @contextmanager
    def use(self) -> Iterator[T]:
        """Borrow a member for one request; its in-flight count covers the ``with`` body."""
        i = self.pick()
        self.inflight[i] += 1
        try:
            yield self.members[i]
        finally:
            self.inflight[i] -= 1
            self.served[i] += 1
