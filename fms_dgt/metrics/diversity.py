"""Diversity of a set of generated texts: distinct-n and self-similarity.

A synthetic data set can pass every per-record check and still be the same few records
reworded; these two numbers say how much: distinct-n is the share of n-grams that are unique
across the set (lexical variety), self-similarity the mean similarity of pairs of records
(1.0: all alike). Pairs are taken from a random sample of at most ``max_texts`` records so
the cost does not grow with the size of the data set.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import numpy as np

from fms_dgt.metrics.text import lcs_length, tokenize


def distinct_n(texts: Iterable[str], n: int = 1) -> float:
    """Distinct n-grams / total n-grams over all ``texts`` (0.0 when there are none)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        toks = tokenize(text)
        grams = list(zip(*(toks[i:] for i in range(n))))
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def self_similarity(
    texts: Sequence[str], method: str = "rouge_l", max_texts: int = 300, seed: int = 0
) -> float | None:
    """Mean pairwise similarity over all pairs of a sample of ``max_texts`` texts.

    ``method``: ``rouge_l`` (mean ROUGE-L F1) or ``jaccard`` (MinHash estimate of the
    Jaccard similarity of word-bigram sets, cheaper for large samples). None for fewer than
    two texts.
    """
    if method not in ("rouge_l", "jaccard"):
        raise ValueError(f"method must be 'rouge_l' or 'jaccard', got {method!r}")
    sample = list(texts)
    if len(sample) > max_texts:
        sample = random.Random(seed).sample(sample, max_texts)
    if len(sample) < 2:
        return None
    if method == "jaccard":
        return _mean_minhash_jaccard(sample)
    toks = [tokenize(t) for t in sample]
    total, pairs = 0.0, 0
    for i in range(len(toks)):
        a = toks[i]
        for b in toks[i + 1 :]:
            if a and b:
                total += 2 * lcs_length(a, b) / (len(a) + len(b))
            pairs += 1
    return total / pairs


def _mean_minhash_jaccard(texts: list[str], num_perm: int = 128) -> float:
    from fms_dgt.blocks.dedup.lsh import MinHasher, ShingleHasher, words

    hasher, shingles = MinHasher(num_perm), ShingleHasher()
    sigs = np.stack([hasher.signature(shingles.ngrams(words(t), 2)) for t in texts])
    n = len(sigs)
    agree = 0.0
    for i in range(n - 1):  # one row against the rest: O(n) memory
        agree += float((sigs[i + 1 :] == sigs[i]).mean(axis=1).sum())
    return agree / (n * (n - 1) / 2)
