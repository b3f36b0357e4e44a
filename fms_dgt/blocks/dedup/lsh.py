"""MinHash signatures and banded LSH indexes, vectorised with numpy, for the near-duplicate
and ROUGE-L dedup blocks.

Why not datasketch: its ``MinHash`` hashes every shingle with SHA-1 in Python and its LSH
keeps each band key as a bytes object in a dict of sets (~100 bytes per band per record). A
streaming filter pays that per record, and a million records pay it a million times.
Here a record's shingles are hashed once (deterministically: word hashes are CRC-32 and
n-grams combine them arithmetically in numpy, nothing salted per process, so a run decides
the same way each time), all ``num_perm`` hash functions are applied in one numpy expression, and the index keeps ~8
bytes per band key in sorted arrays (``hash_index.HashIndex``).
The figures are in docs/benchmarks.md ("Dedup").
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

_MASK32 = 0xFFFFFFFF
_SHIFT32 = np.uint64(32)
_ODD = np.uint64(0x9E3779B97F4A7C15)
_WORD = re.compile(r"\w+")
_CACHE_LIMIT = 500_000


def words(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+``: letters, digits and underscore in any script)."""
    return _WORD.findall(text.lower())


class ShingleHasher:
    """Deterministic 32-bit hashes of word tokens and word n-grams.

    Word hashes are cached (the vocabulary repeats; the cache is cleared when it reaches
    ``_CACHE_LIMIT`` words so memory stays bounded on open vocabularies).
    """

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def word_ids(self, tokens: Sequence[str]) -> list[int]:
        cache = self._cache
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        ids = list(map(cache.get, tokens))
        if None in ids:
            for i, h in enumerate(ids):
                if h is None:
                    tok = tokens[i]
                    ids[i] = cache[tok] = zlib.crc32(tok.encode())
        return ids  # type: ignore[return-value]

    def ngrams(self, tokens: Sequence[str], n: int) -> np.ndarray:
        """64-bit hashes of the word ``n``-grams (a text shorter than ``n`` words is one
        shingle; an empty text has none). Repeated n-grams are not removed: they do not
        change a MinHash signature."""
        ids = np.array(self.word_ids(tokens), dtype=np.uint64)
        if n <= 1 or len(ids) == 0:
            return ids
        if len(ids) <= n:
            n = len(ids)
        m = len(ids) - n + 1
        if n == 2:  # exact: (first << 32) | second
            return (ids[:m] << _SHIFT32) | ids[1 : m + 1]
        grams = ids[:m].copy()  # a polynomial in the word hashes, mod 2**64
        for i in range(1, n):
            grams *= _ODD
            grams += ids[i : m + i]
        return grams

    @staticmethod
    def multiset(word_ids: Sequence[int]) -> np.ndarray:
        """Hashes of (word, occurrence number) pairs for the ``word_ids`` of a text: the set
        whose Jaccard similarity is the multiset Jaccard of the token lists (what bounds
        ROUGE-L)."""
        seen: dict[int, int] = {}
        grams = []
        for h in word_ids:
            k = seen.get(h, 0)
            seen[h] = k + 1
            grams.append(h | (k << 32))
        return np.array(grams, dtype=np.uint64)


class MinHasher:
    """``num_perm`` hash functions applied to all of a record's shingles at once.

    Each function is multiply-add-shift, ``h(x) = ((a * x + b) mod 2**64) >> 32`` with random
    64-bit ``a`` (odd) and ``b``: a 2-universal family that needs no modulo (uint64 arithmetic
    wraps), so a signature is one multiply, one add and one min over an (n, num_perm) array.
    The min is taken before the shift: the top 32 bits of the smallest value are the smallest
    top 32 bits.
    """

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        if num_perm < 2:
            raise ValueError("num_perm must be >= 2")
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.a = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self.b = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64)

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """uint32 minima per function; an empty shingle set gets all-max (so all empty texts
        look alike)."""
        if hashes.size == 0:
            return np.full(self.num_perm, _MASK32, dtype=np.uint32)
        mixed = hashes[:, None] * self.a
        mixed += self.b
        return (mixed.min(axis=0) >> np.uint64(32)).astype(np.uint32)


@lru_cache(maxsize=64)
def choose_bands(threshold: float, num_perm: int, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) for ``num_perm`` permutations whose S-curve ``1 - (1 - s**rows)**bands``
    best separates pairs below and above Jaccard ``threshold``: minimises the weighted areas of
    false positives and false negatives; ``fn_weight`` > 0.5 favours recall."""
    s = np.linspace(0.0, 1.0, 201)
    below, above = s < threshold, s >= threshold
    best, best_cost = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        rows = num_perm // bands
        p = 1.0 - (1.0 - s**rows) ** bands
        fp = float(np.trapezoid(p[below], s[below])) if below.sum() > 1 else 0.0
        fn = float(np.trapezoid(1.0 - p[above], s[above])) if above.sum() > 1 else 0.0
        cost = (1.0 - fn_weight) * fp + fn_weight * fn
        if cost < best_cost:
            best, best_cost = (bands, rows), cost
    return best


class BandHasher:
    """32-bit LSH band keys for one (bands, rows) layout, all bands in one numpy expression.

    Band ``i``'s key is the top 32 bits of ``sum_j m[i, j] * v[i, j] + c[i]`` (mod 2**64) over
    its ``rows`` values ``v``: a multilinear hash with random 64-bit multipliers per band, so
    equal bands give equal keys and unequal ones collide with probability ~2**-32 (a
    collision only sends a candidate to verification, it never decides). 32-bit keys halve
    the index (``HashIndex`` with int32 keys and ids: 8 bytes per band per record).
    """

    def __init__(self, bands: int, rows: int, seed: int = 1) -> None:
        rng = np.random.default_rng([seed, bands, rows])
        self.bands, self.rows = bands, rows
        self.mul = rng.integers(0, 2**64, size=(bands, rows), dtype=np.uint64) | np.uint64(1)
        self.add = rng.integers(0, 2**64, size=bands, dtype=np.uint64)
        self._flat_mul = self.mul.reshape(-1)
        self._starts = np.arange(0, bands * rows, rows)

    def keys(self, sig: np.ndarray) -> list[int]:
        """One signed 32-bit key per band of ``sig`` (uint32 MinHash values)."""
        vals = sig[: self.bands * self.rows].astype(np.uint64)
        vals *= self._flat_mul
        h = np.add.reduceat(vals, self._starts) + self.add
        return (h >> _SHIFT32).astype(np.uint32).view(np.int32).tolist()


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[int]:
    """One 64-bit key per band (the band number is part of the key, so one index holds all
    bands). Python's bytes hash is salted per process, which only changes which 2**-64
    collisions happen, never a decision."""
    raw = sig.tobytes()
    width = rows * sig.itemsize
    return [hash((i, raw[i * width : (i + 1) * width])) for i in range(bands)]
