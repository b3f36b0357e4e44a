"""A compact index of 64-bit keys (LSH band keys), optionally each with integer ids.

Why this shape: a streaming dedup block adds a few keys per record for the whole run, so
what each key costs *is* how memory grows with the number of records. A Python dict or set
entry costs ~90 bytes; a sorted numpy array 8 (16 with ids). Keys therefore pass through
three tiers:

* ``fresh``: a small dict (``fresh_limit`` keys) taking new keys at Python speed;
* ``runs``: sorted arrays in a binary counter (run *i* holds ``fresh_limit * 2**i`` keys);
  a full fresh dict becomes a run, and two runs of one size merge (by copying) into one of
  the next size, so each key is copied O(log n) times;
* ``main``: one sorted array with spare capacity. When the runs together hold 1/16 of it,
  they are merged into it *in place*: it grows with ``ndarray.resize`` (realloc) and its
  keys shift right block by block from the end, so a merge never holds a second copy of
  the index. Main grows by 1/16 per merge, so each key is moved O(1) times on average.

Memory is ~8 bytes per key plus at most ~1/8 more at a merge (where a merge-by-copy index
peaks at twice its size); adding n keys costs O(n log n); a lookup is one dict probe and one
vectorised binary search per occupied run plus main.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_EMPTY: list[int] = []
_MOVE_BLOCK = 1 << 16  # old keys shifted per step of an in-place merge (bounds the scratch space)
_MAIN_RATIO = 16  # runs are merged into main once they hold 1/16 of it
_GROWTH = 1.125  # main's capacity grows by this factor (spare slots are zero-filled: resident)

Run = tuple[np.ndarray, np.ndarray]  # sorted keys, their ids (empty without ids)


class HashIndex:
    """Signed 64-bit keys, with the ids inserted under each when ``with_ids`` is set.

    ``compact``: 32-bit keys and ids (8 bytes per entry with ids instead of 16), for callers
    whose keys are 32-bit hashes whose collisions are harmless (``minhash_dedup`` verifies
    every candidate) and whose ids stay below 2**31.
    """

    def __init__(
        self, with_ids: bool = False, fresh_limit: int = 16384, min_main: int = 1 << 16, compact: bool = False
    ) -> None:
        if fresh_limit < 1 or min_main < 1:
            raise ValueError("fresh_limit and min_main must be >= 1")
        self.with_ids = with_ids
        self.dtype = np.int32 if compact else np.int64
        self.fresh_limit, self.min_main = fresh_limit, min_main
        self.clear()

    def __len__(self) -> int:
        return len(self._fresh_keys) + self._in_runs + self._n

    def clear(self) -> None:
        self._fresh: dict[int, list[int]] = {}  # key -> ids ([] without ids)
        self._fresh_keys: list[int] = []  # insertion order (a key may repeat with ids)
        self._fresh_ids: list[int] = []
        self._runs: list[Run | None] = []  # binary counter, newest data in the lowest runs
        self._in_runs = 0
        self._main_keys = np.empty(0, dtype=self.dtype)  # capacity >= self._n; [:_n] is sorted
        self._main_ids = np.empty(0, dtype=self.dtype)
        self._n = 0

    # ---- writes ----------------------------------------------------------------------
    def add(self, keys: Sequence[int], item: int = 0) -> None:
        fresh = self._fresh
        if self.with_ids:
            for k in keys:
                ids = fresh.get(k)
                if ids is None:
                    fresh[k] = [item]
                else:
                    ids.append(item)
            self._fresh_keys.extend(keys)
            self._fresh_ids.extend([item] * len(keys))
        else:
            new = [k for k in keys if k not in fresh]
            fresh.update(dict.fromkeys(new, _EMPTY))
            self._fresh_keys.extend(new)
        if len(self._fresh_keys) >= self.fresh_limit:
            self._fold_fresh()

    def _fold_fresh(self) -> None:
        keys = np.array(self._fresh_keys, dtype=self.dtype)
        order = np.argsort(keys, kind="stable")  # stable: ids of one key stay in insertion order
        ids = np.array(self._fresh_ids, dtype=self.dtype)[order] if self.with_ids else keys[:0]
        run: Run = (keys[order], ids)
        self._fresh.clear()
        self._fresh_keys.clear()
        self._fresh_ids.clear()
        self._in_runs += len(run[0])
        for level in range(len(self._runs) + 1):  # carry upwards like a binary counter
            if level == len(self._runs):
                self._runs.append(None)
            held = self._runs[level]
            if held is None:
                self._runs[level] = run
                break
            self._runs[level] = None
            run = _merge(held, run)  # the held run is the older one
        if self._in_runs >= max(self.min_main, self._n // _MAIN_RATIO):
            self._spill()

    def _spill(self) -> None:
        """Merge every run into main in place."""
        merged: Run | None = None
        for run in reversed(self._runs):  # oldest (highest) first
            if run is not None:
                merged = run if merged is None else _merge(merged, run)
        self._runs, self._in_runs = [], 0
        if merged is None:
            return
        new_keys, new_ids = merged
        n, m = self._n, len(new_keys)
        self._reserve(n + m)
        keys, ids = self._main_keys, self._main_ids
        at = np.searchsorted(keys[:n], new_keys, side="right")  # after older ids of a key
        # old key i ends at i + (number of new keys inserted at or before i); walk from the end
        # so every block is written only over slots already vacated
        first = int(at[0]) if m else n
        end = n
        while end > first:
            start = max(first, end - _MOVE_BLOCK)
            lo, hi = np.searchsorted(at, [start, end])  # new keys at < start, at < end
            counts = np.bincount(at[lo:hi] - start, minlength=end - start)[: end - start]
            dest = np.arange(start, end) + int(lo) + np.cumsum(counts)
            keys[dest] = keys[start:end].copy()
            if self.with_ids:
                ids[dest] = ids[start:end].copy()
            end = start
        slots = at + np.arange(m)
        keys[slots] = new_keys
        if self.with_ids:
            ids[slots] = new_ids
        self._n = n + m

    def _reserve(self, size: int) -> None:
        capacity = len(self._main_keys)
        if size <= capacity:
            return
        capacity = max(size, int(capacity * _GROWTH))
        # resize in place (realloc); the arrays own their data and no view of them is kept
        self._main_keys.resize(capacity, refcheck=False)
        if self.with_ids:
            self._main_ids.resize(capacity, refcheck=False)

    # ---- reads -----------------------------------------------------------------------
    def _sorted_parts(self) -> list[Run]:
        parts = [run for run in self._runs if run is not None]
        if self._n:
            parts.append(
                (self._main_keys[: self._n], self._main_ids[: self._n] if self.with_ids else self._main_ids)
            )
        return parts

    def contains_any(self, keys: Sequence[int]) -> bool:
        if not self._fresh.keys().isdisjoint(keys):
            return True
        parts = self._sorted_parts()
        if not parts:
            return False
        q = np.array(keys, dtype=self.dtype)
        for arr, _ in parts:
            i = np.minimum(np.searchsorted(arr, q), len(arr) - 1)
            if (arr[i] == q).any():
                return True
        return False

    def lookup(self, keys: Sequence[int]) -> set[int]:
        """Every id inserted under any of ``keys`` (needs ``with_ids``)."""
        found: set[int] = set()
        fresh = self._fresh
        for k in keys:
            ids = fresh.get(k)
            if ids:
                found.update(ids)
        parts = self._sorted_parts()
        if not parts:
            return found
        q = np.array(keys, dtype=self.dtype)
        for arr, arr_ids in parts:
            # the common case is no hit: four numpy calls per sorted part, then done
            lo = arr.searchsorted(q)
            eq = arr[np.minimum(lo, len(arr) - 1)] == q
            if eq.any():
                hit = q[eq]
                hi = arr.searchsorted(hit, side="right")
                for a, b in zip(lo[eq].tolist(), hi.tolist()):
                    found.update(arr_ids[a:b].tolist())
        return found


def _merge(older: Run, newer: Run) -> Run:
    """One sorted run from two, ``newer``'s entries after ``older``'s under an equal key."""
    at = np.searchsorted(older[0], newer[0], side="right")
    keys = np.insert(older[0], at, newer[0])
    ids = np.insert(older[1], at, newer[1]) if len(older[1]) or len(newer[1]) else keys[:0]
    return keys, ids
