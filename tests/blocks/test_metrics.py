"""Metrics against values worked out by hand."""

from __future__ import annotations

import random

import pytest

from fms_dgt.metrics import (
    distinct_n,
    exact_match,
    lcs_length,
    normalize_answer,
    rouge_l,
    rouge_n,
    self_similarity,
    token_f1,
)


def _lcs_dp(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def test_lcs_matches_dynamic_programme() -> None:
    rng = random.Random(1)
    for _ in range(300):
        a = rng.choices("abcde", k=rng.randint(0, 90))
        b = rng.choices("abcde", k=rng.randint(0, 90))
        assert lcs_length(a, b) == _lcs_dp(a, b)


def test_rouge_known_values() -> None:
    # LCS("the cat sat on the mat", "the cat is on the mat") = the cat on the mat = 5
    s = rouge_l("the cat sat on the mat", "the cat is on the mat")
    assert s.precision == pytest.approx(5 / 6) and s.f1 == pytest.approx(5 / 6)
    r1 = rouge_n("the cat sat", "the cat the", 1)  # clipped: the, cat
    assert r1.f1 == pytest.approx(2 / 3)
    r2 = rouge_n("the cat sat on the mat", "the cat is on the mat", 2)  # the cat, on the, the mat
    assert r2.precision == pytest.approx(3 / 5) and r2.recall == pytest.approx(3 / 5)
    assert rouge_l("", "x").f1 == 0.0
    assert rouge_n("a b", "a b", 3).f1 == 0.0
    l_short = rouge_l("a b c d", "a x b y c z d w")  # LCS 4: P 1, R 0.5
    assert l_short.f1 == pytest.approx(2 / 3)


def test_squad_normalisation_em_f1() -> None:
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("the eiffel tower.", "Eiffel Tower") == 1.0
    assert exact_match("Paris", ["London", "paris"]) == 1.0
    assert exact_match("Paris, France", "Paris") == 0.0
    # pred: paris france; gold: paris -> P 1/2, R 1 -> F 2/3
    assert token_f1("Paris, France", "Paris") == pytest.approx(2 / 3)
    assert token_f1("a", "the") == 1.0  # both empty after normalisation
    assert token_f1("", "x") == 0.0
    assert token_f1("blue red", ["green", "red blue"]) == 1.0


def test_distinct_n() -> None:
    texts = ["a b a b", "a b c"]
    assert distinct_n(texts, 1) == pytest.approx(3 / 7)  # a b c over 7 tokens
    assert distinct_n(texts, 2) == pytest.approx(3 / 5)  # ab, ba, bc over 5 bigrams
    assert distinct_n([], 2) == 0.0


def test_self_similarity() -> None:
    same = ["the quick brown fox jumps"] * 5
    assert self_similarity(same) == pytest.approx(1.0)
    assert self_similarity(same, method="jaccard") == pytest.approx(1.0)
    different = [f"alpha{i} beta{i} gamma{i} delta{i}" for i in range(10)]
    assert self_similarity(different) == 0.0
    assert self_similarity(different, method="jaccard") < 0.05
    assert self_similarity(["one"]) is None
    mixed = ["a b c d", "a b c e"]  # LCS 3 of 4
    assert self_similarity(mixed) == pytest.approx(0.75)
    many = [f"text {i} with words {i % 7}" for i in range(1000)]
    assert 0.0 < self_similarity(many, max_texts=50) < 1.0
    with pytest.raises(ValueError):
        self_similarity(same, method="cosine")
