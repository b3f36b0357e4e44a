"""The verification sketches of ``minhash_dedup``: the low ``bits`` bits of each MinHash value
of every seen record, packed (two 4-bit values per byte), in an append-only temporary file.

Why b-bit values rather than full 32-bit ones (b-bit MinHash, Li and König): verification
only asks how many values agree. Keeping 4 bits per value makes unequal values agree by
chance 1/16 of the time, which the estimator corrects for (``contract.agree_prob``) at the
cost of ~8% more permutations for the same precision, and stores a record in
``num_perm / 2`` bytes instead of ``4 * num_perm``.

Why a file rather than an array: a sketch is read only when the LSH index proposes its
record as a candidate (0.06 times per new record on the benchmark's texts), yet it is the
largest per-record state of the block (192 bytes at Jaccard 0.8 against 72 of LSH keys).
Kept in the heap it made the process grow ~320 bytes per record; in a file, row ``i`` at
offset ``i * width``, written in 64 KiB appends and read with ``os.pread`` for candidates
only, it lives in the kernel's page cache (which may evict it to disk and reads it back on
demand), not in the process's memory. ``pread`` rather than ``mmap``: mapped pages that were
touched count in the process's resident set. The file is created unlinked
(``tempfile.TemporaryFile``: nothing is left behind, even when the process is killed) in
``directory`` (default: the system temporary folder, ``TMPDIR``; on a tmpfs it is held in
RAM after all, as shared memory); ``close`` releases it, else the garbage collector or the
process's exit does. It holds nothing that is not derived from the accepted records: a
resumed run rebuilds it as it rebuilds the LSH index, by accepting the stored records again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

_FLUSH_BYTES = 1 << 16  # pending rows are appended to the file once they reach this size


class SketchStore:
    """Row ``i`` is the sketch of the ``i``-th added signature.

    Args:
        num_perm: MinHash values per signature.
        bits: low bits kept per value (1, 2, 4 or 8).
        directory: where the temporary file is created (None: ``tempfile.gettempdir()``).
    """

    def __init__(self, num_perm: int, bits: int = 4, directory: str | None = None) -> None:
        if bits not in (1, 2, 4, 8):
            raise ValueError("bits must be 1, 2, 4 or 8")
        self.num_perm, self.bits = num_perm, bits
        self.directory = directory
        self.per_byte = 8 // bits
        self.pad = -num_perm % self.per_byte  # zero values appended: they always agree
        self.width = (num_perm + self.pad) // self.per_byte
        self._mask = np.uint8((1 << bits) - 1)
        self._file: BinaryIO | None = None  # opened at the first add
        self._pending = bytearray()  # rows not yet written: [_flushed, _n)
        self._flushed = self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def fileno(self) -> int | None:
        """The descriptor of the backing file (None before the first add and after close)."""
        return None if self._file is None else self._file.fileno()

    @property
    def file_bytes(self) -> int:
        """Bytes written to the backing file so far."""
        return self._flushed * self.width

    def clear(self) -> None:
        """Forget every row (the file is truncated and kept open)."""
        if self._file is not None:
            os.ftruncate(self._file.fileno(), 0)
        self._pending.clear()
        self._flushed = self._n = 0

    def close(self) -> None:
        """Forget every row and release the file (a later add opens a new one)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._pending.clear()
        self._flushed = self._n = 0

    def pack(self, sig: np.ndarray) -> np.ndarray:
        """The packed sketch of a uint32 signature: value ``j`` in bits ``bits * (j % per_byte)``
        of byte ``j // per_byte``."""
        low = (sig[: self.num_perm] & int(self._mask)).astype(np.uint8)
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
        if self._file is None:
            # held open for the block's life, closed by close()
            self._file = tempfile.TemporaryFile(  # noqa: SIM115
                prefix="fms_dgt_sketch_", dir=self.directory, buffering=0
            )
        self._pending += (self.pack(sig) if packed is None else packed).tobytes()
        self._n += 1
        if len(self._pending) >= _FLUSH_BYTES:
            self._flush()
        return self._n - 1

    def _flush(self) -> None:
        assert self._file is not None
        data = bytes(self._pending)  # 64 KiB: a copy, so no view pins the buffer
        fd, at = self._file.fileno(), self._flushed * self.width
        while data:  # os.pwrite may write less than asked
            done = os.pwrite(fd, data, at)
            data, at = data[done:], at + done
        self._flushed = self._n
        self._pending.clear()

    def rows(self, rows: Sequence[int]) -> np.ndarray:
        """The packed sketches of ``rows``, one per line (one ``pread`` per row on disk)."""
        width, flushed, pending = self.width, self._flushed, self._pending
        fd = -1 if self._file is None else self._file.fileno()
        parts = []
        for r in rows:
            if r >= flushed:
                at = (r - flushed) * width
                parts.append(bytes(pending[at : at + width]))
            else:
                parts.append(os.pread(fd, width, r * width))
        return np.frombuffer(b"".join(parts), dtype=np.uint8).reshape(len(parts), width)

    def agreements(
        self, rows: Sequence[int], sig: np.ndarray, packed: np.ndarray | None = None
    ) -> np.ndarray:
        """How many of the ``num_perm`` values of each stored row agree with ``sig``'s."""
        mine = self.pack(sig) if packed is None else packed
        diff = self.rows(rows) ^ mine
        if self.bits == 8:
            unequal = np.count_nonzero(diff, axis=1)
        else:
            unequal = np.zeros(len(diff), dtype=np.int64)
            for k in range(self.per_byte):
                unequal += np.count_nonzero(diff & (self._mask << np.uint8(self.bits * k)), axis=1)
        return self.num_perm - unequal  # padding always agrees
