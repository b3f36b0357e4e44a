"""minhash_dedup: near duplicates rejected as they stream in, against seeds and accepted
records; usable as a postprocessor and from YAML through the registry."""

from __future__ import annotations

import pytest

from fms_dgt.blocks.base import FilterPostprocessor
from fms_dgt.blocks.dedup.minhash import MinHashDedup
from fms_dgt.registry import blocks as block_registry
from tests.blocks.conftest import QA, stream

BASE = "how do plants use sunlight water and carbon dioxide to make sugar and release oxygen into the air"


def test_near_duplicates_rejected_distinct_kept() -> None:
    block = MinHashDedup(fields=["question"], threshold=0.7)
    records = [
        QA(question=BASE),
        QA(question=BASE.replace("release", "give off")),  # one word changed: Jaccard ~0.8
        QA(question="what causes the seasons to change on earth during a year"),
        QA(question=BASE + " every day"),
    ]
    kept, rejected = stream(block, records)
    assert [r.question for r in kept] == [BASE, records[2].question]
    assert len(rejected) == 2 and all("near duplicate" in why for _, why in rejected)


def test_against_seeds() -> None:
    block = MinHashDedup(fields=["question"], threshold=0.7)
    block.prime([QA(question=BASE, is_seed=True)])
    kept, rejected = stream(
        block, [QA(question=BASE.upper() + "!"), QA(question="a different question here")]
    )
    assert len(kept) == 1 and len(rejected) == 1


def test_threshold_controls_strictness() -> None:
    a = "one two three four five six seven eight nine ten eleven twelve"
    b = "one two three four five six seven eight xx yy zz ww"  # bigram Jaccard 7/15
    loose = MinHashDedup(fields=["question"], threshold=0.3, ngram=2)
    strict = MinHashDedup(fields=["question"], threshold=0.9, ngram=2)
    assert len(stream(loose, [QA(question=a), QA(question=b)])[1]) == 1
    assert len(stream(strict, [QA(question=a), QA(question=b)])[1]) == 0


def test_many_distinct_records_stream_through() -> None:
    block = MinHashDedup(fields=["question"])
    records = [
        QA(question=f"record {i} talks about topic {i * 7919 % 1000} and item {i}") for i in range(3000)
    ]
    records += [QA(question=records[i].question) for i in range(0, 3000, 10)]
    kept, rejected = stream(block, records)
    assert len(rejected) >= 300  # every exact repeat
    assert len(kept) >= 2700  # ngram=2 on distinct numbers: almost none collide


def test_as_postprocessor_keeps_first_and_resets() -> None:
    pp = FilterPostprocessor(MinHashDedup(fields=["question"], threshold=0.7))
    rows = [{"question": BASE}, {"question": BASE + " today"}, {"question": "something else entirely new"}]
    seeds = [{"question": "something else entirely new"}]
    assert [r["question"] for r in pp.process(rows, seeds)] == [BASE]
    assert len(pp.rejected) == 2
    pp.rejected.clear()
    assert len(list(pp.process(rows))) == 2  # a second pass starts from scratch


def test_registered_and_validated() -> None:
    cls = block_registry.get("minhash_dedup")
    assert cls is MinHashDedup
    with pytest.raises(ValueError, match="threshold"):
        MinHashDedup(threshold=1.5)
    with pytest.raises(ValueError, match="bands"):
        MinHashDedup(bands=500)
    assert MinHashDedup(bands=16, num_perm=128).rows == 8
    with pytest.raises(ValueError, match="num_perm"):
        MinHashDedup(num_perm=1)
