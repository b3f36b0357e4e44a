"""A compact set of 64-bit hashes for dedup indexes.

A Python ``set`` of hash digests costs ~90 bytes per entry (the object plus the table slot),
which is most of what a long run's memory grows by. ``KeySet`` keeps recent keys in a small
``set`` and folds them, every ``buffer_limit`` additions, into one sorted ``int64`` numpy
array: 8 bytes per entry, membership by binary search (~1 µs), and each fold is a linear
merge (timsort on two sorted runs), so adding n keys costs O(n) amortised per fold window.
numpy is imported on the first fold only, so small runs never pay for it.
"""

from __future__ import annotations

from typing import Any


class KeySet:
    """Set of signed 64-bit integers (e.g. ``int.from_bytes(digest8, "little", signed=True)``)."""

    def __init__(self, buffer_limit: int = 8192) -> None:
        self.buffer_limit = buffer_limit
        self._recent: set[int] = set()
        self._sorted: Any = None  # numpy int64 array, ascending

    def __contains__(self, key: int) -> bool:
        if key in self._recent:
            return True
        arr = self._sorted
        if arr is None:
            return False
        i = int(arr.searchsorted(key))
        return i < len(arr) and int(arr[i]) == key

    def __len__(self) -> int:
        return len(self._recent) + (0 if self._sorted is None else len(self._sorted))

    def add(self, key: int) -> None:
        if key in self:
            return
        self._recent.add(key)
        if len(self._recent) >= self.buffer_limit:
            self._fold()

    def clear(self) -> None:
        self._recent.clear()
        self._sorted = None

    def _fold(self) -> None:
        import numpy as np

        fresh = np.fromiter(self._recent, dtype=np.int64, count=len(self._recent))
        fresh.sort()
        merged = fresh if self._sorted is None else np.concatenate((self._sorted, fresh))
        merged.sort(kind="stable")  # two sorted runs: a linear merge
        self._sorted = merged
        self._recent.clear()
