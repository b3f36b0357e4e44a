"""rouge_dedup: the classic ROUGE-L rule, with LSH pruning that misses (almost) nothing."""

from __future__ import annotations

import random

from fms_dgt.blocks.base import FilterPostprocessor
from fms_dgt.blocks.dedup.rouge import RougeDedup
from fms_dgt.metrics.text import rouge_l
from tests.blocks.conftest import QA, stream

Q = "write a short poem about the ocean at night for a child who cannot sleep"


def test_rejects_at_threshold_and_reports_score() -> None:
    block = RougeDedup(fields=["question"], threshold=0.7)
    close = "write a short poem about the sea at night for a child who cannot sleep"
    far = "explain how a bicycle gear works to someone who has never ridden one"
    kept, rejected = stream(block, [QA(question=Q), QA(question=close), QA(question=far)])
    assert [r.question for r in kept] == [Q, far]
    assert rouge_l(close, Q).f1 >= 0.7
    assert rejected[0][1].startswith("ROUGE-L duplicate: 0.93")


def test_word_order_matters_unlike_bag_of_words() -> None:
    block = RougeDedup(fields=["question"], threshold=0.7)
    shuffled = " ".join(reversed(Q.split()))  # same words, LCS tiny
    kept, _ = stream(block, [QA(question=Q), QA(question=shuffled)])
    assert len(kept) == 2


def test_against_seeds_and_as_postprocessor() -> None:
    block = RougeDedup(fields=["question"])
    block.prime([QA(question=Q, is_seed=True)])
    assert block.check(QA(question=Q + " please")) is not None
    pp = FilterPostprocessor(RougeDedup(fields=["question"]))
    out = list(pp.process([{"question": Q}, {"question": Q.upper()}], seeds=[]))
    assert len(out) == 1 and len(pp.rejected) == 1


def test_pruned_matches_equal_exhaustive_on_a_sample() -> None:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(400)]
    texts: list[str] = []
    for _ in range(400):
        if texts and rng.random() < 0.3:  # an edited copy of an earlier text
            src = rng.choice(texts).split()
            texts.append(" ".join(w if rng.random() > 0.2 else rng.choice(vocab) for w in src))
        else:
            texts.append(" ".join(rng.choices(vocab, k=rng.randint(8, 30))))
    block = RougeDedup(fields=["question"], threshold=0.7)
    found, truth = set(), set()
    for j, text in enumerate(texts):
        found.update((i, j) for i, _ in block.matches(QA(question=text)))
        truth.update((i, j) for i in range(j) if rouge_l(text, texts[i]).f1 >= 0.7)
        block.accept(QA(question=text))
    assert truth and found <= truth  # exact on candidates: no false positives
    assert len(found) / len(truth) >= 0.95
    assert block.comparisons < 400 * 399 / 2 / 20  # and far fewer than all pairs
