"""minhash_dedup: near duplicates rejected as they stream in, against seeds and accepted
records; usable as a postprocessor and from YAML through the registry."""

from __future__ import annotations

import os
import random
import tempfile
import tracemalloc

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


def _open_links(directory: str) -> list[str]:
    """What this process's open descriptors point to under ``directory`` (Linux /proc)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listdir itself used, closed meanwhile
            continue
        if target.startswith(directory):
            out.append(target)
    return out


def _distinct(n: int, offset: int = 0) -> list[QA]:
    return [
        QA(question=f"record {i} talks about topic {i * 7919 % 1000} and item {i} only")
        for i in range(offset, offset + n)
    ]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
def test_sketch_file_is_out_of_sight_and_released_at_close(tmp_path, monkeypatch) -> None:
    """The sketches live in an unlinked temporary file: never visible in the folder (nothing
    to leave behind after a crash), holding every accepted record's sketch, gone at close."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    block = MinHashDedup(fields=["question"])
    assert block.sketches.fileno is None  # nothing opened before the first record
    kept, _ = stream(block, _distinct(600))
    fd = block.sketches.fileno
    assert fd is not None and len(kept) == 600 == len(block.sketches)
    assert os.listdir(tmp_path) == []
    links = _open_links(str(tmp_path))
    assert len(links) == 1 and links[0].endswith("(deleted)")
    assert os.fstat(fd).st_size == block.sketches.file_bytes >= 300 * block.sketches.width  # flushed rows
    block.close()
    assert block.sketches.fileno is None and _open_links(str(tmp_path)) == []
    with pytest.raises(OSError):
        os.fstat(fd)
    # still usable after close: a new file, an empty index
    assert stream(block, _distinct(1))[0] and len(block.sketches) == 1
    block.close()


def test_resume_rebuilds_the_sketches(tmp_path, monkeypatch) -> None:
    """A resumed run has only its stores: it primes the seeds and accepts the stored records
    again (``GenerationLoop.restore``). The rebuilt sketch file must equal the first run's, and
    near duplicates of records from before the resume, flushed to the file or still pending,
    must be caught."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seeds = [QA(question=BASE, is_seed=True)]
    first = MinHashDedup(fields=["question"], threshold=0.7)
    first.prime(seeds)
    stored, _ = stream(first, _distinct(700))
    before = first.sketches.rows(range(len(first.sketches)))
    first.close()  # the crash: nothing of the block survives

    resumed = MinHashDedup(fields=["question"], threshold=0.7)
    resumed.prime(seeds)
    for record in stored:
        resumed.accept(record)
    assert len(resumed.sketches) == 701 and resumed.sketches.file_bytes > 0
    assert (resumed.sketches.rows(range(701)) == before).all()
    again = [QA(question=stored[3].question + " only"), QA(question=stored[-1].question + " only")]
    again.append(QA(question=BASE + " too"))
    kept, rejected = stream(resumed, [*again, *_distinct(5, offset=5000)])
    assert len(rejected) == 3 and len(kept) == 5
    resumed.close()


def test_memory_per_record_is_the_index_not_the_sketches() -> None:
    """What the process keeps per accepted record at 0.8 is its 9 band entries (72 bytes, plus
    the index's spare room and its small dict of fresh keys); the 192-byte sketches are in the
    file. Kept in memory they would add ~190 bytes per record (measured 320 in all)."""
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(2000)]  # a closed vocabulary: the word cache stops growing
    records = [{"text": " ".join(rng.choices(vocab, k=20))} for _ in range(30_000)]
    block = MinHashDedup(fields=["text"])
    stream(block, records[:5000])
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept, _ = stream(block, records[5000:])
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(kept) > 24_000
    assert grown / len(kept) < 200, f"{grown / len(kept):.0f} bytes per accepted record"
    block.close()
