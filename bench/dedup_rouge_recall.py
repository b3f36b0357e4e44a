"""Recall of rouge_dedup's candidate pruning against exhaustive ROUGE-L on a sample (a part
of ``python -m bench.dedup_bench``): which pairs the index finds, and which records each rule
rejects when streaming."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np


def rouge_recall(n: int, dup_fraction: float, threshold: float = 0.7) -> dict[str, Any]:
    """Pairs (i < j) with ROUGE-L F >= threshold found by rouge_dedup's candidates, against
    all pairs, and the records each rule rejects when streaming."""
    from bench.dedup_bench import records
    from fms_dgt.blocks.dedup.rouge import RougeDedup
    from fms_dgt.metrics.text import LcsMasks, tokenize

    texts = [r["text"] for chunk in records(n, dup_fraction, seed=1) for r in chunk]
    toks = [tokenize(t) for t in texts]
    t0 = time.perf_counter()
    truth: set[tuple[int, int]] = set()
    for i, j in _overlap_candidates(toks, threshold):
        if 2 * LcsMasks(toks[i]).lcs(toks[j]) / (len(toks[i]) + len(toks[j])) >= threshold:
            truth.add((i, j))
    exhaustive_s = time.perf_counter() - t0
    block = RougeDedup(fields=["text"], threshold=threshold)
    found: set[tuple[int, int]] = set()
    t0 = time.perf_counter()
    for j, text in enumerate(texts):
        rec = {"text": text}
        found.update((i, j) for i, _ in block.matches(rec))
        block.accept(rec)
    pruned_s = time.perf_counter() - t0
    # streaming rejections: j is rejected if a kept earlier record matches it
    kept_exact = _stream_rejections(n, truth)
    kept_pruned = _stream_rejections(n, found)
    return {
        "n": n,
        "threshold": threshold,
        "pairs": len(truth),
        "found": len(found & truth),
        "false_pairs": len(found - truth),
        "pair_recall": round(len(found & truth) / max(1, len(truth)), 4),
        "rejected_exhaustive": n - len(kept_exact),
        "rejected_pruned": n - len(kept_pruned),
        "comparisons": block.comparisons,
        "all_pairs": n * (n - 1) // 2,
        "exhaustive_s": round(exhaustive_s, 1),
        "pruned_s": round(pruned_s, 2),
    }


def _stream_rejections(n: int, pairs: set[tuple[int, int]]) -> set[int]:
    earlier: dict[int, list[int]] = {}
    for i, j in pairs:
        earlier.setdefault(j, []).append(i)
    kept: set[int] = set()
    for j in range(n):
        if not any(i in kept for i in earlier.get(j, ())):
            kept.add(j)
    return kept


def _overlap_candidates(toks: list[list[str]], t: float) -> Iterator[tuple[int, int]]:
    """Every pair whose multiset overlap allows ROUGE-L F >= t (LCS <= overlap), computed for
    all pairs at once with a sparse product: a sound filter, so what passes it and the exact
    LCS is exactly the exhaustive answer. Falls back to all pairs without scipy."""
    n = len(toks)
    try:
        from scipy import sparse
    except ImportError:  # pragma: no cover - scipy comes with sentence-transformers
        yield from ((i, j) for i in range(n) for j in range(i + 1, n))
        return
    vocab: dict[tuple[str, int], int] = {}
    rows, cols = [], []
    for i, ts in enumerate(toks):
        seen: dict[str, int] = {}
        for w in ts:
            k = seen.get(w, 0)
            seen[w] = k + 1
            rows.append(i)
            cols.append(vocab.setdefault((w, k), len(vocab)))
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, len(vocab)))
    m = (x @ x.T).tocoo()
    lengths = np.array([len(ts) for ts in toks])
    ok = (m.row < m.col) & (m.data >= t * (lengths[m.row] + lengths[m.col]) / 2 - 1e-6)
    yield from zip(m.row[ok].tolist(), m.col[ok].tolist())
