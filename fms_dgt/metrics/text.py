"""Reference-based text metrics: ROUGE-1/2/L, exact match and token F1.

Tokenisation for ROUGE is lower-cased ``\\w+`` words (any script; no stemming), so scores
are comparable with the ROUGE-L dedup block, which uses the same tokens. Exact match and
token F1 use SQuAD-style answer normalisation (lower case, no punctuation, no English
articles, single spaces) because they score short answers, where "The Eiffel Tower." and
"eiffel tower" should agree.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\w+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class Score:
    """Precision, recall and F1 of a prediction against a reference."""

    precision: float
    recall: float
    f1: float

    @classmethod
    def from_overlap(cls, overlap: int, n_pred: int, n_ref: int) -> Score:
        if overlap == 0 or n_pred == 0 or n_ref == 0:
            return cls(0.0, 0.0, 0.0)
        p, r = overlap / n_pred, overlap / n_ref
        return cls(p, r, 2 * p * r / (p + r))


def tokenize(text: str) -> list[str]:
    """ROUGE tokens: lower-cased words."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b``.

    Bit-parallel (Allison-Dix / Hyyrö): one bit per element of the shorter sequence, one
    big-integer update per element of the longer one, so O(len(a) * len(b) / 64) machine
    operations instead of the quadratic dynamic programme in Python.
    """
    if len(a) < len(b):
        a, b = b, a
    return LcsMasks(b).lcs(a)


class LcsMasks:
    """The bit masks of one sequence, built once and reused against many others (the ROUGE-L
    dedup compares a new text with all its candidates)."""

    __slots__ = ("full", "masks", "size")

    def __init__(self, seq: Sequence[Hashable]) -> None:
        masks: dict[Hashable, int] = {}
        for i, token in enumerate(seq):
            masks[token] = masks.get(token, 0) | (1 << i)
        self.masks, self.size, self.full = masks, len(seq), (1 << len(seq)) - 1

    def lcs(self, other: Sequence[Hashable]) -> int:
        """LCS length of this sequence and ``other``."""
        if not self.size:
            return 0
        get, full = self.masks.get, self.full
        v = full
        for token in other:
            m = get(token)
            if m:
                u = v & m
                v = ((v + u) | (v - u)) & full
        return self.size - v.bit_count()


def rouge_l(prediction: str | Sequence[str], reference: str | Sequence[str]) -> Score:
    """ROUGE-L (LCS-based) of ``prediction`` against ``reference`` (texts or token lists)."""
    p = tokenize(prediction) if isinstance(prediction, str) else prediction
    r = tokenize(reference) if isinstance(reference, str) else reference
    return Score.from_overlap(lcs_length(p, r), len(p), len(r))


def rouge_n(prediction: str | Sequence[str], reference: str | Sequence[str], n: int = 1) -> Score:
    """ROUGE-N: clipped n-gram overlap of ``prediction`` and ``reference``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    p = tokenize(prediction) if isinstance(prediction, str) else list(prediction)
    r = tokenize(reference) if isinstance(reference, str) else list(reference)
    pg = Counter(zip(*(p[i:] for i in range(n))))
    rg = Counter(zip(*(r[i:] for i in range(n))))
    overlap = sum((pg & rg).values())
    return Score.from_overlap(overlap, sum(pg.values()), sum(rg.values()))


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse spaces."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised reference (any of several)."""
    refs = [reference] if isinstance(reference, str) else list(reference)
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(r) for r in refs))


def token_f1(prediction: str, reference: str | Sequence[str]) -> float:
    """SQuAD token F1 (bag of normalised tokens); the best over several references. Two empty
    answers agree (1.0); an empty one against a non-empty one scores 0."""
    refs = [reference] if isinstance(reference, str) else list(reference)
    pred = normalize_answer(prediction).split()
    best = 0.0
    for ref in refs:
        gold = normalize_answer(ref).split()
        if not pred or not gold:
            best = max(best, float(pred == gold))
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        best = max(best, Score.from_overlap(common, len(pred), len(gold)).f1)
    return best
