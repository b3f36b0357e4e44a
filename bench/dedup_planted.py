"""Recall and false positives of ``minhash_dedup`` per similarity bin, on planted pairs.

A planted pair is two texts built so that the Jaccard similarity of their word-bigram sets is
known: every word is distinct, and the texts share one run of ``m`` words, so they share
``m - 1`` bigrams and ``J = (m - 1) / (|A| + |B| - (m - 1))`` (computed again from the
bigram sets, so the figure is exact). For each pair a fresh index holds the first text and
``check`` is asked about the second: the share flagged per bin is the recall (bins at or
above the threshold) or the false-positive rate (bins at or below ``threshold - 0.1``).

    python -m bench.dedup_planted --threshold 0.8 --pairs 2000
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

MIN_RECALL = 0.95
MAX_FALSE_POSITIVE = 0.01
GAP = 0.1


def planted_pair(rng: np.random.Generator, jaccard: float, counter: list[int]) -> tuple[str, str, float]:
    """Two texts of 20-120 distinct words whose bigram Jaccard is as close to ``jaccard`` as
    the lengths allow; returns them and the exact value."""
    n = int(rng.integers(21, 121))  # words per text; n - 1 bigrams
    shared = round(2 * (n - 1) * jaccard / (1 + jaccard))  # shared bigrams
    m = min(n, shared + 1) if shared > 0 else 0  # shared run of words
    start = counter[0]
    counter[0] += 3 * n
    fresh = (f"w{start + i}" for i in range(3 * n))
    run = [next(fresh) for _ in range(m)]

    def text() -> list[str]:
        before = int(rng.integers(0, n - m + 1))
        return [next(fresh) for _ in range(before)] + run + [next(fresh) for _ in range(n - m - before)]

    a, b = text(), text()
    ga, gb = set(zip(a, a[1:])), set(zip(b, b[1:]))
    return " ".join(a), " ".join(b), len(ga & gb) / len(ga | gb)


def bins_for(threshold: float) -> list[tuple[float, float]]:
    """Edges: the two contract edges (J in [t, t + 0.01) and [t - 0.11, t - 0.1]), then 0.05-wide
    bins from ``t - 0.3`` to 1."""
    t = threshold
    edges = [
        (t, min(1.0, round(t + 0.01, 4))),
        (max(0.0, round(t - GAP - 0.01, 4)), max(0.0, round(t - GAP, 4))),
    ]
    lo = max(0.0, round(t - 0.3, 2))
    while lo < 1.0 - 1e-9:
        hi = min(1.0, round(lo + 0.05, 2))
        edges.append((lo, hi))
        lo = hi
    return edges


def measure(threshold: float = 0.8, pairs: int = 2000, seed: int = 0, **block_args: Any) -> dict[str, Any]:
    """Flag rate per bin; each bin's verdict against the contract (None for the grey zone
    between ``threshold - 0.1`` and ``threshold``)."""
    from fms_dgt.blocks.dedup.minhash import MinHashDedup

    block = MinHashDedup(fields=["text"], threshold=threshold, **block_args)
    rng = np.random.default_rng(seed)
    counter = [0]
    rows = []
    t0 = time.perf_counter()
    for lo, hi in bins_for(threshold):
        flagged = done = 0
        js = []
        while done < pairs:
            a, b, j = planted_pair(rng, float(rng.uniform(lo, hi)), counter)
            if not lo <= j <= hi:
                continue  # outside the bin after rounding to whole bigrams: draw again
            block.reset()
            block.accept({"text": a})
            flagged += block.check({"text": b}) is not None
            done += 1
            js.append(j)
        rate = flagged / done
        if lo >= threshold:
            kind, ok = "recall", rate >= MIN_RECALL
        elif hi <= threshold - GAP + 1e-9:
            kind, ok = "false positive", rate < MAX_FALSE_POSITIVE
        else:
            kind, ok = "grey zone", None
        rows.append(
            {
                "lo": lo,
                "hi": hi,
                "pairs": done,
                "mean_j": float(np.mean(js)),
                "flagged": rate,
                "kind": kind,
                "pass": ok,
            }
        )
    return {
        "threshold": threshold,
        "plan": block.plan.describe(),
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "pass": all(r["pass"] is not False for r in rows),
    }


def report(result: dict[str, Any]) -> None:
    print(f"planted pairs at threshold {result['threshold']:g}: {result['plan']}  ({result['seconds']} s)")
    print(f"  {'Jaccard bin':<15} {'pairs':>6} {'mean J':>7} {'flagged':>8}  contract")
    for r in result["rows"]:
        if r["kind"] == "recall":
            what = f"recall >= {MIN_RECALL:.0%}"
        elif r["kind"] == "false positive":
            what = f"flagged < {MAX_FALSE_POSITIVE:.0%}"
        else:
            what = "(between t - 0.1 and t: no promise)"
        mark = "" if r["pass"] is None else ("PASS" if r["pass"] else "FAIL")
        print(
            f"  [{r['lo']:.2f}, {r['hi']:.2f}]  {r['pairs']:>6} {r['mean_j']:>7.3f} {r['flagged']:>8.2%}  {what} {mark}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threshold", type=float, nargs="*", default=[0.8])
    ap.add_argument("--pairs", type=int, default=2000, help="pairs per bin")
    ap.add_argument(
        "--num-perm", type=int, default=None, help="default: the block's (chosen for the contract)"
    )
    args = ap.parse_args(argv)
    ok = True
    for t in args.threshold:
        result = measure(t, args.pairs, num_perm=args.num_perm)
        report(result)
        ok &= result["pass"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
