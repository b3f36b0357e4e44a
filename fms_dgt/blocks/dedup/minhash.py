"""Near-duplicate dedup: MinHash over word n-grams, banded LSH for candidates, verification
of each candidate against its stored sketch, so that the threshold means what it says.

The contract (``contract.py``): a pair whose Jaccard similarity is >= ``threshold`` is
caught with probability >= 95%, a pair at or below ``threshold - 0.1`` flagged < 1% of the
time. LSH bands are chosen for recall (>= 99% at the threshold); verification counts how many
of the two records' ``num_perm`` 4-bit sketch values agree and rejects at ``min_matches``.
No pairwise comparison beyond the candidates is made, so a record costs about the same
whatever the number accepted. Memory per accepted record is 8 bytes per band (72 at 0.8: 9
bands of 4 rows); the ``num_perm / 2``-byte sketches (192 at 0.8) go to an unlinked temporary
file read only for candidates (``sketch_store``), released by ``close`` and rebuilt on resume
with the index (docs/benchmarks.md, "Dedup").
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.blocks.dedup.contract import Plan, plan
from fms_dgt.blocks.dedup.hash_index import HashIndex
from fms_dgt.blocks.dedup.lsh import BandHasher, MinHasher, ShingleHasher, words
from fms_dgt.blocks.dedup.sketch_store import SketchStore

log = logging.getLogger(__name__)


class MinHashDedup(FilterBlock):
    """Reject a record whose Jaccard similarity (over word n-grams) to a seed or an accepted
    record reaches ``threshold``: >= 95% of such pairs are caught, < 1% of pairs at
    ``threshold - 0.1`` or below are flagged (with the default ``num_perm``).

    Args:
        fields: fields compared (default: every string field).
        threshold: Jaccard similarity at which two texts count as duplicates.
        num_perm: MinHash permutations. Default: the fewest that keep the contract at this
            threshold (384 at 0.8, 256 at 0.9). Fewer are faster and smaller but blur the
            threshold (a warning gives the false-positive rate they imply).
        ngram: words per shingle (1 compares vocabularies, 2-3 also word order).
        bands: LSH bands; rows per band is ``num_perm // bands``. Default: chosen for >= 99%
            candidate recall at the threshold.
        seed: permutation seed.
    """

    kind = "minhash_dedup"

    def __init__(
        self,
        name: str | None = None,
        fields: list[str] | None = None,
        threshold: float = 0.8,
        num_perm: int | None = None,
        ngram: int = 2,
        bands: int | None = None,
        seed: int = 1,
        **kwargs: Any,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {ngram}")
        if num_perm is not None and not 2 <= num_perm <= 4096:
            raise ValueError(f"num_perm must be between 2 and 4096, got {num_perm}")
        perms = num_perm if num_perm is not None else plan(threshold).num_perm
        if bands is not None and not 1 <= bands <= perms:
            raise ValueError(f"bands must be between 1 and num_perm ({perms}), got {bands}")
        super().__init__(name, fields=fields, **kwargs)
        self.threshold, self.ngram = threshold, ngram
        self.plan: Plan = plan(threshold, num_perm, bands)
        if not self.plan.meets_contract:
            log.warning(
                "minhash_dedup %s: %s; the contract (>= 95%% caught at the threshold, < 1%% flagged "
                "0.1 below it) needs num_perm >= %d and the default bands",
                self.name,
                self.plan.describe(),
                plan(threshold).num_perm,
            )
        self.bands, self.rows = self.plan.bands, self.plan.rows
        self.hasher = MinHasher(self.plan.num_perm, seed)
        self.band_hasher = BandHasher(self.bands, self.rows, seed)
        self.shingles = ShingleHasher()
        self.index = HashIndex(with_ids=True, compact=True)
        self.sketches = SketchStore(self.plan.num_perm, self.plan.bits)
        self._last: tuple[Any, np.ndarray, list[int]] | None = None
        self._pack: tuple[np.ndarray, np.ndarray] | None = None

    def signature(self, text: str) -> np.ndarray:
        """The MinHash signature of ``text`` (also used by the metrics and the bench)."""
        return self.hasher.signature(self.shingles.ngrams(words(text), self.ngram))

    def _prepare(self, record: Any) -> tuple[np.ndarray, list[int]]:
        # check() and accept() see the same record back to back: hash it once
        last = self._last
        if last is not None and last[0] is record:
            return last[1], last[2]
        sig = self.signature(self.text_of(record))
        keys = self.band_hasher.keys(sig)
        self._last = (record, sig, keys)  # holds the record, so its id cannot be reused meanwhile
        return sig, keys

    def best_match(self, record: Any) -> tuple[int, float] | None:
        """(row of the seen record, estimated Jaccard) of the most similar verified duplicate
        of ``record``, or None."""
        sig, keys = self._prepare(record)
        cands = self.index.lookup(keys)
        if not cands:
            return None
        rows = sorted(cands)
        agree = self.sketches.agreements(rows, sig, self._packed(sig))
        best = int(np.argmax(agree))
        if agree[best] < self.plan.min_matches:
            return None
        chance = 2.0**-self.plan.bits
        est = (agree[best] / self.plan.num_perm - chance) / (1.0 - chance)
        return rows[best], float(min(1.0, est))

    def check(self, record: Any) -> str | None:
        # one stable reason per block (reports group rejections by reason); best_match() gives
        # the matched record and its estimated similarity to whoever needs them
        if self.best_match(record) is not None:
            return f"near duplicate (Jaccard >= {self.threshold:g})"
        return None

    def _packed(self, sig: np.ndarray) -> np.ndarray:
        # the sketch of the record in hand, packed once for verification and for accept
        if self._pack is None or self._pack[0] is not sig:
            self._pack = (sig, self.sketches.pack(sig))
        return self._pack[1]

    def accept(self, record: Any) -> None:
        sig, keys = self._prepare(record)
        self.index.add(keys, self.sketches.add(sig, self._packed(sig)))
        self._last = self._pack = None

    def reset(self) -> None:
        self.index.clear()
        self.sketches.clear()
        self._last = self._pack = None

    def close(self) -> None:
        """Forget the accepted records and release the sketch file (the block stays usable:
        the next accept starts a new one)."""
        self.reset()
        self.sketches.close()
