"""Near-duplicate dedup: MinHash over word n-grams, banded LSH, a Jaccard threshold.

A record is rejected when one LSH band of its signature equals that band of a seed or an
accepted record, i.e. when the two are likely to have Jaccard similarity >= ``threshold``
(bands and rows are chosen for the threshold, see ``choose_bands``). No pairwise comparison
is made, so each record costs about the same whatever the number already accepted (~30-55 µs),
and a million records keep ~75 MB of band keys, 8 bytes per band (docs/benchmarks.md, "Dedup").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.blocks.dedup.hash_index import HashIndex
from fms_dgt.blocks.dedup.lsh import MinHasher, ShingleHasher, band_keys, choose_bands, words


class MinHashDedup(FilterBlock):
    """Reject a record whose estimated Jaccard similarity (over word n-grams) to a seed or an
    accepted record reaches ``threshold``.

    Args:
        fields: fields compared (default: every string field).
        threshold: Jaccard similarity at which two texts count as duplicates.
        num_perm: MinHash permutations (more: a sharper threshold, slower).
        ngram: words per shingle (1 compares vocabularies, 2-3 also word order).
        bands: LSH bands; rows per band is ``num_perm // bands``. Default: chosen for the
            threshold.
        seed: permutation seed.
    """

    kind = "minhash_dedup"

    def __init__(
        self,
        name: str | None = None,
        fields: list[str] | None = None,
        threshold: float = 0.8,
        num_perm: int = 128,
        ngram: int = 2,
        bands: int | None = None,
        seed: int = 1,
        **kwargs: Any,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {ngram}")
        super().__init__(name, fields=fields, **kwargs)
        self.threshold, self.ngram = threshold, ngram
        self.hasher = MinHasher(num_perm, seed)
        self.shingles = ShingleHasher()
        if bands is None:
            self.bands, self.rows = choose_bands(threshold, num_perm)
        elif not 1 <= bands <= num_perm:
            raise ValueError(f"bands must be between 1 and num_perm ({num_perm}), got {bands}")
        else:
            self.bands, self.rows = bands, num_perm // bands
        self.index = HashIndex()
        self._last: tuple[Any, list[int]] | None = None

    def signature(self, text: str) -> np.ndarray:
        """The MinHash signature of ``text`` (also used by the metrics and the bench)."""
        return self.hasher.signature(self.shingles.ngrams(words(text), self.ngram))

    def _keys(self, record: Any) -> list[int]:
        # check() and accept() see the same record back to back: hash it once
        last = self._last
        if last is not None and last[0] is record:
            return last[1]
        keys = band_keys(self.signature(self.text_of(record)), self.bands, self.rows)
        self._last = (record, keys)  # holds the record, so its id cannot be reused meanwhile
        return keys

    def check(self, record: Any) -> str | None:
        if self.index.contains_any(self._keys(record)):
            return f"near duplicate (Jaccard >= {self.threshold:g})"
        return None

    def accept(self, record: Any) -> None:
        self.index.add(self._keys(record))
        self._last = None

    def reset(self) -> None:
        self.index.clear()
        self._last = None
