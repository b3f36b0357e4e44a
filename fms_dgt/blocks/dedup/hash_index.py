"""A compact index of 64-bit keys (LSH band keys), optionally each with integer ids.

Why this shape: a streaming dedup block adds a few keys per record for the whole run, so
what each key costs *is* how memory grows with the number of records. A Python dict or set
entry costs ~90 bytes; a sorted numpy array 8 (16 with ids). Keys therefore pass through
three tiers:

* ``fresh``: a small dict (at most ``fresh_limit`` keys) taking new keys at Python speed;
* ``mid``: one sorted array (at most ``mid_limit`` keys) into which ``fresh`` is merged by
  copying: cheap because it stays small;
* ``main``: one sorted array with spare capacity into which ``mid`` is merged *in place*:
  the array grows with ``ndarray.resize`` (realloc: large blocks are remapped, not copied)
  and old keys are shifted right block by block from the end, so a merge never holds a
  second copy of the index. Peak memory is ~8 bytes per key plus a fixed few MB, where a
  merge-by-copy index peaks at twice its size.

Adding n keys costs O(n) amortised per tier plus O(n² / mid_limit) element moves in
``main`` (a few seconds of memmove for ten million keys); a lookup is one dict probe and two
vectorised binary searches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_EMPTY: list[int] = []
_MOVE_BLOCK = 1 << 16  # old keys shifted per step of an in-place merge (bounds the scratch space)


class HashIndex:
    """Signed 64-bit keys, with the ids inserted under each when ``with_ids`` is set."""

    def __init__(self, with_ids: bool = False, fresh_limit: int = 4096, mid_limit: int = 1 << 18) -> None:
        if not 1 <= fresh_limit <= mid_limit:
            raise ValueError("need 1 <= fresh_limit <= mid_limit")
        self.with_ids = with_ids
        self.fresh_limit, self.mid_limit = fresh_limit, mid_limit
        self.clear()

    def __len__(self) -> int:
        return len(self._fresh_keys) + len(self._mid_keys) + self._n

    def clear(self) -> None:
        self._fresh: dict[int, list[int]] = {}  # key -> ids ([] without ids)
        self._fresh_keys: list[int] = []  # insertion order (a key may repeat with ids)
        self._fresh_ids: list[int] = []
        self._mid_keys = np.empty(0, dtype=np.int64)
        self._mid_ids = np.empty(0, dtype=np.int64)
        self._main_keys = np.empty(0, dtype=np.int64)  # capacity >= self._n; [:_n] is sorted
        self._main_ids = np.empty(0, dtype=np.int64)
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
        keys = np.array(self._fresh_keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")  # stable: ids of one key stay in insertion order
        keys = keys[order]
        at = np.searchsorted(self._mid_keys, keys, side="right")  # after older ids of a key
        self._mid_keys = np.insert(self._mid_keys, at, keys)
        if self.with_ids:
            ids = np.array(self._fresh_ids, dtype=np.int64)[order]
            self._mid_ids = np.insert(self._mid_ids, at, ids)
        self._fresh.clear()
        self._fresh_keys.clear()
        self._fresh_ids.clear()
        if len(self._mid_keys) >= self.mid_limit:
            self._fold_mid()

    def _fold_mid(self) -> None:
        new_keys, new_ids = self._mid_keys, self._mid_ids
        n, m = self._n, len(new_keys)
        self._reserve(n + m)
        keys, ids = self._main_keys, self._main_ids
        at = np.searchsorted(keys[:n], new_keys, side="right")
        # old key i ends at i + (number of new keys inserted at or before i); walk from the end
        # so every block is written only over slots already vacated
        first = int(at[0]) if m else n
        end = n
        while end > first:
            start = max(first, end - _MOVE_BLOCK)
            lo, hi = np.searchsorted(at, [start, end])  # new keys at < start, at < end
            before = int(lo)  # they shift every old key of this block
            counts = np.bincount(at[lo:hi] - start, minlength=end - start)[: end - start]
            dest = np.arange(start, end) + before + np.cumsum(counts)
            keys[dest] = keys[start:end].copy()
            if self.with_ids:
                ids[dest] = ids[start:end].copy()
            end = start
        slots = at + np.arange(m)
        keys[slots] = new_keys
        if self.with_ids:
            ids[slots] = new_ids
        self._n = n + m
        self._mid_keys = np.empty(0, dtype=np.int64)
        self._mid_ids = np.empty(0, dtype=np.int64)

    def _reserve(self, size: int) -> None:
        capacity = len(self._main_keys)
        if size <= capacity:
            return
        capacity = max(size, capacity + capacity // 2, self.mid_limit)
        # resize in place (realloc); the arrays own their data and no view of them is kept
        self._main_keys.resize(capacity, refcheck=False)
        if self.with_ids:
            self._main_ids.resize(capacity, refcheck=False)

    # ---- reads -----------------------------------------------------------------------
    def contains_any(self, keys: Sequence[int]) -> bool:
        if not self._fresh.keys().isdisjoint(keys):
            return True
        q = None
        for arr in (self._mid_keys, self._main_keys[: self._n]):
            if len(arr):
                q = np.array(keys, dtype=np.int64) if q is None else q
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
        q = None
        for arr, arr_ids in ((self._mid_keys, self._mid_ids), (self._main_keys[: self._n], self._main_ids)):
            if not len(arr):
                continue
            q = np.array(keys, dtype=np.int64) if q is None else q
            lo = np.searchsorted(arr, q)
            hit = np.flatnonzero(lo < len(arr))
            hit = hit[arr[lo[hit]] == q[hit]]
            if len(hit):
                hi = np.searchsorted(arr, q[hit], side="right")
                for a, b in zip(lo[hit].tolist(), hi.tolist()):
                    found.update(arr_ids[a:b].tolist())
        return found
