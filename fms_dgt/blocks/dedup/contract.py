"""What ``minhash_dedup``'s threshold promises, and the parameters that keep the promise.

The contract, for a threshold ``t``: a pair whose true Jaccard similarity is >= ``t`` is
caught with probability >= 95%; a pair at or below ``t - 0.1`` is flagged with probability
< 1%. Two stages meet it:

1. **Candidates** (recall): banded LSH over the MinHash signature. A pair at similarity ``s``
   shares at least one of ``b`` bands of ``r`` rows with probability ``1 - (1 - s**r)**b``
   (the S-curve); ``b`` and ``r`` are chosen so that this is >= 99% at ``s = t`` with as few
   bands as keep unrelated texts from becoming candidates (each band costs the process 8
   bytes per record: 9 bands of 4 rows at 0.8).
2. **Verification** (precision): each candidate's stored sketch (the low ``bits`` bits of its
   ``num_perm`` MinHash values, read from a file: ``sketch_store``) is compared with the new
   record's. For a pair at similarity
   ``J`` each value agrees with probability ``p(J) = J + (1 - J) / 2**bits`` (equal minima,
   or unequal minima whose low bits happen to agree), so the number of agreements is
   Binomial(num_perm, p(J)). A candidate is a duplicate when at least ``min_matches`` agree:
   the smallest count that a pair at ``t - 0.1`` reaches with probability < 0.8%.

Why a configurable ``num_perm`` cannot stay at 128: one MinHash value is a coin that lands
on "equal" with probability J. Telling J = 0.8 (caught 96% of the time) from J = 0.7
(flagged < 1%) needs the two binomial tails apart, about ``(1.75 * 0.40 + 2.33 * 0.46)**2 /
0.1**2`` ~ 310 values; with 128 the best possible test (Neyman-Pearson: a count threshold)
flags a 0.7 pair 10% of the time when it catches 95% at 0.8. No band layout can do better
than the count test, so the default ``num_perm`` is the smallest multiple of 32 for which the
two binomial tails separate (see ``plan``). Union bound: recall >= LSH recall + verification
recall - 1 >= 0.99 + 0.96 - 1; and a pair is flagged only if it passes verification, so the
false-positive rate is at most the verification's. Neither bound needs the two stages to be
independent, which is why the bands may reuse the first values of the signature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

LSH_RECALL = 0.99  # the S-curve at the threshold
VERIFY_RECALL = 0.96  # P(a pair at the threshold passes verification)
FP_TARGET = 0.008  # P(a pair at threshold - 0.1 passes verification), below the promised 1%
GAP = 0.1  # the contract's distance between "caught" and "not flagged"
SKETCH_BITS = 4  # low bits kept per MinHash value for verification (num_perm / 2 bytes per record)
BACKGROUND = 0.25  # unrelated texts are taken at this fraction of the threshold ...
BAND_COLLISION = 2e-3  # ... and share one given band with at most this probability
MAX_AUTO_PERM = 1024


@dataclass(frozen=True)
class Plan:
    """The parameters for one threshold and what they guarantee (by the binomial model)."""

    threshold: float
    num_perm: int
    bands: int
    rows: int
    bits: int
    min_matches: int  # agreeing sketch values for a candidate to count as a duplicate
    lsh_recall: float  # S-curve at the threshold
    verify_recall: float  # P(verification passes) at the threshold
    false_positive: float  # P(verification passes) at threshold - 0.1 (bounds being flagged)

    @property
    def recall(self) -> float:
        """A lower bound on P(caught) for a pair at the threshold (union bound)."""
        return max(0.0, self.lsh_recall + self.verify_recall - 1.0)

    @property
    def meets_contract(self) -> bool:
        return self.recall >= 0.95 and self.false_positive < 0.01

    @property
    def margin(self) -> float:
        """How far below the threshold the verification's Jaccard estimate may fall:
        ``min_matches`` agreements estimate Jaccard ``threshold - margin``."""
        chance = 2.0**-self.bits
        est = (self.min_matches / self.num_perm - chance) / (1.0 - chance)
        return self.threshold - est

    def describe(self) -> str:
        return (
            f"num_perm {self.num_perm}, {self.bands} bands x {self.rows} rows, verification at "
            f">= {self.min_matches}/{self.num_perm} agreeing {self.bits}-bit values (estimated Jaccard "
            f">= {self.threshold - self.margin:.3f}): recall at {self.threshold:g} >= {self.recall:.1%}, "
            f"flagged at {max(0.0, self.threshold - GAP):.2f}: {self.false_positive:.2%}"
        )


def s_curve(s: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """P(two texts at Jaccard ``s`` share at least one of ``bands`` bands of ``rows`` rows)."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** bands


def agree_prob(jaccard: float, bits: int = SKETCH_BITS) -> float:
    """P(one b-bit sketch value agrees) for a pair at ``jaccard``."""
    return jaccard + (1.0 - jaccard) * 2.0**-bits


def tail(n: int, p: float) -> np.ndarray:
    """``out[c]`` = P(Binomial(n, p) >= c) for c in 0..n+1 (computed in log space)."""
    if p <= 0.0:
        out = np.zeros(n + 2)
        out[0] = 1.0
        return out
    if p >= 1.0:
        out = np.ones(n + 2)
        out[-1] = 0.0
        return out
    lp, lq = math.log(p), math.log1p(-p)
    lg = [math.lgamma(k + 1) for k in range(n + 1)]
    log_pmf = np.array([lg[n] - lg[k] - lg[n - k] + k * lp + (n - k) * lq for k in range(n + 1)])
    pmf = np.exp(log_pmf - log_pmf.max())
    pmf /= pmf.sum()
    out = np.zeros(n + 2)
    out[: n + 1] = np.cumsum(pmf[::-1])[::-1]
    return np.minimum(out, 1.0)


def choose_lsh(threshold: float, num_perm: int, recall: float = LSH_RECALL) -> tuple[int, int]:
    """(bands, rows) for the candidate stage: rows enough that unrelated texts (at
    ``BACKGROUND`` x the threshold) share one band with probability <= ``BAND_COLLISION``
    (each candidate costs one read of its sketch), then the fewest bands reaching ``recall``
    at the threshold (each band costs 8 bytes of memory per record; the bands use the first
    ``bands * rows`` values of the signature, the verification all of them). Fewer rows when
    ``num_perm`` cannot hold them."""
    background = max(1e-3, BACKGROUND * threshold)
    rows = max(1, math.ceil(math.log(BAND_COLLISION) / math.log(background)))
    for r in range(rows, 0, -1):
        hit = threshold**r
        if hit >= 1.0:
            return 1, r
        bands = math.ceil(math.log(1.0 - recall) / math.log1p(-hit))
        if bands * r <= num_perm:
            return bands, r
    return num_perm, 1


def _verification(num_perm: int, threshold: float, bits: int) -> tuple[int, float, float]:
    """(min_matches, recall at threshold, flagged at threshold - GAP): the smallest count whose
    false-positive rate is below ``FP_TARGET``; when that costs recall below ``VERIFY_RECALL``
    (too few permutations), the largest count that keeps the recall instead."""
    hi = tail(num_perm, agree_prob(threshold, bits))
    lo = tail(num_perm, agree_prob(max(0.0, threshold - GAP), bits))
    c = int(np.argmax(lo < FP_TARGET))
    if hi[c] < VERIFY_RECALL:  # infeasible: keep recall, report the false positives
        c = int(np.flatnonzero(hi >= VERIFY_RECALL)[-1])
    return c, float(hi[c]), float(lo[c])


@lru_cache(maxsize=64)
def plan(threshold: float, num_perm: int | None = None, bands: int | None = None) -> Plan:
    """The parameters for ``threshold``: with ``num_perm`` None, the smallest multiple of 32
    (from 128, at most ``MAX_AUTO_PERM``) that meets the contract; with ``bands`` None, the
    band layout of ``choose_lsh``."""
    if num_perm is None:
        for k in range(128, MAX_AUTO_PERM + 1, 32):
            c, rec, fp = _verification(k, threshold, SKETCH_BITS)
            if rec >= VERIFY_RECALL and fp < FP_TARGET:
                break
        num_perm = k
    if bands is None:
        bands, rows = choose_lsh(threshold, num_perm)
    else:
        rows = num_perm // bands
    c, rec, fp = _verification(num_perm, threshold, SKETCH_BITS)
    return Plan(
        threshold=threshold,
        num_perm=num_perm,
        bands=bands,
        rows=rows,
        bits=SKETCH_BITS,
        min_matches=c,
        lsh_recall=float(s_curve(threshold, bands, rows)),
        verify_recall=rec,
        false_positive=fp,
    )
