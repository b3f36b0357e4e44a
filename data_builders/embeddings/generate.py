"""The ``embeddings`` builder: a sentence embedding per input text; no LLM is called.

The texts of a chunk (``transform_batch_size`` rows) are embedded in one call of the
``embedder`` block (``sentence_embedder``: sentence-transformers, default the packaged
all-MiniLM-L6-v2, 384 dimensions; or ``vllm_embedder``). Each row gives one record with the
text, its ``embedding``, ``embedding_model`` and ``dimensions``. A row whose text is empty
is a rejection: there is nothing to embed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fms_dgt import Rejection, TransformationDataBuilder, register_data_builder

from .embedders import Embedder
from .task import EmbeddingsTask, Text


@register_data_builder("embeddings")
class Embeddings(TransformationDataBuilder):
    TASK_TYPE = EmbeddingsTask
    task: EmbeddingsTask
    embedder: Embedder

    def __call__(self, request_idx: int, rows: Sequence[Text]) -> list[Any]:
        texts = [row for row in rows if row.text.strip()]
        vectors = iter(self.embedder.embed([row.text for row in texts], normalize=self.task.normalize))
        name = self.embedder.model_name
        out: list[Any] = []
        for row in rows:
            if not row.text.strip():
                out.append(
                    Rejection(
                        "empty text: nothing to embed",
                        raw={"input_id": row.id, "text": row.text},
                        block="embeddings",
                    )
                )
                continue
            vector = next(vectors)
            out.append(
                self.task.instantiate_output_example(
                    text=row.text,
                    embedding=vector.tolist(),
                    embedding_model=name,
                    dimensions=len(vector),
                    model_name=name,
                    lineage={"input_id": row.id, "model": name, "engine": self.embedder.name},
                )
            )
        return out
