"""The verification sketches of ``minhash_dedup``: the low ``bits`` bits of each MinHash value
of every seen record, packed (two 4-bit values per byte), in one growable numpy array.

Why b-bit values rather than full 32-bit ones (b-bit MinHash, Li and König): verification
only asks how many values agree. Keeping 4 bits per value makes unequal values agree by
chance 1/16 of the time, which the estimator corrects for (``contract.agree_prob``) at the
cost of ~8% more permutations for the same precision, and stores a record in
``num_perm / 2`` bytes instead of ``4 * num_perm``. Rows are appended in place: the array
grows with ``ndarray.resize`` (realloc) by 1/8 at a time, so memory is the sketches plus at
most 1/8 spare, with no second copy at a resize.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_GROWTH = 1.125
_MIN_ROWS = 1024


class SketchStore:
    """Row ``i`` is the sketch of the ``i``-th added signature."""

    def __init__(self, num_perm: int, bits: int = 4) -> None:
        if bits not in (1, 2, 4, 8):
            raise ValueError("bits must be 1, 2, 4 or 8")
        self.num_perm, self.bits = num_perm, bits
        self.per_byte = 8 // bits
        self.pad = -num_perm % self.per_byte  # zero values appended: they always agree
        self.width = (num_perm + self.pad) // self.per_byte
        self._mask = np.uint8((1 << bits) - 1)
        self.clear()

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        self._rows = np.zeros((0, self.width), dtype=np.uint8)
        self._n = 0

    def pack(self, sig: np.ndarray) -> np.ndarray:
        """The packed sketch of a uint32 signature: value ``j`` in bits ``bits * (j % per_byte)``
        of byte ``j // per_byte``."""
        low = (sig & int(self._mask)).astype(np.uint8)
        if self.pad:
            low = np.concatenate((low, np.zeros(self.pad, dtype=np.uint8)))
        if self.per_byte == 1:
            return low
        if self.per_byte == 2:  # the default: two strided reads, one shift, one or
            return low[0::2] | (low[1::2] << np.uint8(4))
        grid = low.reshape(self.width, self.per_byte)
        out = grid[:, 0].copy()
        for k in range(1, self.per_byte):
            out |= grid[:, k] << np.uint8(self.bits * k)
        return out

    def add(self, sig: np.ndarray, packed: np.ndarray | None = None) -> int:
        """Store ``sig``'s sketch (``packed``: its ``pack`` already computed); returns its row
        number."""
        if self._n == len(self._rows):
            capacity = max(_MIN_ROWS, int(self._n * _GROWTH) + 1)
            self._rows.resize((capacity, self.width), refcheck=False)  # in place, zero-filled
        self._rows[self._n] = self.pack(sig) if packed is None else packed
        self._n += 1
        return self._n - 1

    def agreements(
        self, rows: Sequence[int], sig: np.ndarray, packed: np.ndarray | None = None
    ) -> np.ndarray:
        """How many of the ``num_perm`` values of each stored row agree with ``sig``'s."""
        mine = self.pack(sig) if packed is None else packed
        diff = self._rows[np.asarray(rows, dtype=np.int64)] ^ mine
        if self.bits == 8:
            unequal = np.count_nonzero(diff, axis=1)
        else:
            unequal = np.zeros(len(diff), dtype=np.int64)
            for k in range(self.per_byte):
                unequal += np.count_nonzero(diff & (self._mask << np.uint8(self.bits * k)), axis=1)
        return self.num_perm - unequal  # padding always agrees; type: ignore[no-any-return]
