"""The MinHash/LSH building blocks: determinism, Jaccard estimates, band choice, HashIndex."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fms_dgt.blocks.dedup.lsh import HashIndex, MinHasher, ShingleHasher, band_keys, choose_bands, words


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
    idx = HashIndex(with_ids=with_ids, min_buffer=16, growth=0.5)
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
