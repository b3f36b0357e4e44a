"""The MinHash/LSH building blocks: determinism, Jaccard estimates, band choice, HashIndex."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from fms_dgt.blocks.dedup.hash_index import HashIndex
from fms_dgt.blocks.dedup.lsh import BandHasher, MinHasher, ShingleHasher, band_keys, choose_bands, words


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def test_signature_estimates_jaccard() -> None:
    rng = np.random.default_rng(0)
    hasher, sh = MinHasher(256, seed=3), ShingleHasher()
    for overlap in (0.2, 0.5, 0.8):
        base = [f"w{i}" for i in rng.choice(100000, 200, replace=False)]
        keep = int(200 * overlap)
        other = base[:keep] + [f"x{i}" for i in range(200 - keep)]
        true = _jaccard(set(base), set(other))
        sa, sb = (hasher.signature(sh.ngrams(t, 1)) for t in (base, other))
        assert abs(float((sa == sb).mean()) - true) < 0.08


def test_shingle_hashes_are_stable_across_processes() -> None:
    code = (
        "from fms_dgt.blocks.dedup.lsh import ShingleHasher, words;"
        "print(sorted(ShingleHasher().ngrams(words('The cat sat on the mat today'), 2).tolist()))"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(outs) == 1  # str hashes are salted per process; these must not be


def test_short_and_empty_texts() -> None:
    sh = ShingleHasher()
    assert len(sh.ngrams(["one"], 2)) == 1
    assert len(sh.ngrams([], 2)) == 0
    assert MinHasher(16).signature(sh.ngrams([], 2)).tolist() == [0xFFFFFFFF] * 16
    assert words("Héllo, WORLD_1!") == ["héllo", "world_1"]


def test_multiset_counts_repeats() -> None:
    sh = ShingleHasher()
    ids = sh.word_ids(["a", "a", "b"])
    assert len(set(sh.multiset(ids).tolist())) == 3


def test_choose_bands_moves_with_threshold() -> None:
    b_hi, r_hi = choose_bands(0.9, 128)
    b_lo, r_lo = choose_bands(0.5, 128)
    assert r_hi > r_lo and b_hi < b_lo
    assert b_hi * r_hi <= 128
    # favouring recall adds bands
    assert choose_bands(0.5, 128, 0.9)[0] >= b_lo


def test_band_keys_include_band_number() -> None:
    sig = np.zeros(8, dtype=np.uint32)  # all bands equal in content
    assert len(set(band_keys(sig, 4, 2))) == 4


@pytest.mark.parametrize("with_ids", [False, True])
def test_hash_index_survives_folds(with_ids: bool) -> None:
    idx = HashIndex(with_ids=with_ids, fresh_limit=16, min_main=64)
    rng = np.random.default_rng(1)
    keys = rng.integers(-(2**63), 2**63 - 1, size=2000, dtype=np.int64).tolist()
    for i in range(0, 2000, 4):
        idx.add(keys[i : i + 4], item=i // 4)
    assert len(idx) == 2000
    for i in range(0, 2000, 97):
        assert idx.contains_any([12345, keys[i]])
        if with_ids:
            assert idx.lookup([keys[i]]) == {i // 4}
    assert not idx.contains_any([1, 2, 3])
    if with_ids:
        idx.add([keys[0]], item=999)  # a second id under a folded key
        assert idx.lookup([keys[0]]) == {0, 999}
    idx.clear()
    assert len(idx) == 0 and not idx.contains_any(keys[:10])


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("with_ids", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_hash_index_matches_a_dict_through_every_tier(
    with_ids: bool, seed: int, compact: bool, monkeypatch
) -> None:
    """Random adds (some keys repeated, so one key holds several ids) across many fresh
    folds, run merges and in-place main merges: membership and ids always equal a dict's."""
    rng = random.Random(seed)
    from fms_dgt.blocks.dedup import hash_index

    monkeypatch.setattr(hash_index, "_MOVE_BLOCK", rng.choice([1, 3, 1 << 16]))  # many blocks per merge
    idx = HashIndex(
        with_ids=with_ids,
        fresh_limit=rng.choice([1, 3, 16]),
        min_main=rng.choice([1, 16, 50, 200]),
        compact=compact,
    )
    bits = 31 if compact else 63
    ref: dict[int, set[int]] = {}
    pool = [rng.randrange(-(2**bits), 2**bits) for _ in range(300)]
    for item in range(1500):
        keys = [
            rng.choice(pool) if rng.random() < 0.3 else rng.randrange(-(2**bits), 2**bits) for _ in range(4)
        ]
        idx.add(keys, item)
        for k in keys:
            ref.setdefault(k, set()).add(item)
        if item % 50 == 49:
            probe = [*rng.sample(sorted(ref), 5), rng.randrange(-(2**bits), 2**bits)]
            assert idx.contains_any(probe)
            assert idx.contains_any(probe[-1:]) == (probe[-1] in ref)
            if with_ids:
                assert idx.lookup(probe) == set().union(*(ref.get(k, set()) for k in probe))
    main = idx._main_keys[: idx._n]
    assert idx._n > 0 and bool((np.diff(main) >= 0).all())
    for k in rng.sample(sorted(ref), 100):
        assert idx.contains_any([k])
        if with_ids:
            assert idx.lookup([k]) == ref[k]


def test_hash_index_memory_is_about_8_bytes_per_key() -> None:
    """What the index holds after a million keys: the main array (with its growth slack) and
    the small tiers, not a second copy of the index or a Python object per key."""
    idx = HashIndex()
    keys = np.random.default_rng(0).integers(-(2**63), 2**63 - 1, size=1_000_000, dtype=np.int64)
    for i in range(0, len(keys), 9):
        idx.add(keys[i : i + 9].tolist())
    runs = sum(r[0].nbytes + r[1].nbytes for r in idx._runs if r is not None)
    held = idx._main_keys.nbytes + runs + 100 * len(idx._fresh_keys)
    assert len(idx) == 1_000_000
    assert held / len(idx) < 8 * 1.3
    assert idx.contains_any(keys[123_456:123_457].tolist())


def test_band_hasher_is_deterministic_and_band_specific() -> None:
    sig = np.arange(96, dtype=np.uint32)
    a, b = BandHasher(16, 6, seed=1), BandHasher(16, 6, seed=1)
    assert a.keys(sig) == b.keys(sig) and len(set(a.keys(sig))) == 16
    other = sig.copy()
    other[7] += 1  # band 1 changes, the others do not
    changed = [x != y for x, y in zip(a.keys(sig), a.keys(other))]
    assert changed == [i == 1 for i in range(16)]
    assert all(-(2**31) <= k < 2**31 for k in a.keys(sig))
