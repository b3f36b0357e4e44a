"""KeySet (the compact dedup index) behaves like a set across folds into its sorted array."""

from __future__ import annotations

import random

from fms_dgt.blocks.dedup.exact import ExactDedup
from fms_dgt.blocks.dedup.keyset import KeySet


def test_matches_a_python_set_across_folds() -> None:
    keys, ref = KeySet(buffer_limit=64), set()
    rng = random.Random(3)
    for i in range(3000):
        k = rng.randrange(-(2**63), 2**63) if i % 3 else rng.randrange(-40, 40)
        assert (k in keys) == (k in ref)
        keys.add(k)
        ref.add(k)
    assert len(keys) == len(ref)
    assert all(k in keys for k in ref)
    assert all((k in keys) == (k in ref) for k in (rng.randrange(-(2**63), 2**63) for _ in range(500)))
    assert -(2**63) not in keys and 2**63 - 1 not in keys
    keys.clear()
    assert len(keys) == 0 and next(iter(ref)) not in keys


def test_exact_dedup_over_many_records_and_reset() -> None:
    dedup = ExactDedup(fields=["q"])
    for i in range(20000):  # more than one fold
        record = {"q": f"Question number {i}?"}
        assert dedup.check(record) is None
        dedup.accept(record)
    assert dedup.check({"q": "question NUMBER 17"}) == "exact duplicate"
    assert dedup.check({"q": "Question number 20000?"}) is None
    dedup.reset()
    assert dedup.check({"q": "Question number 17?"}) is None
