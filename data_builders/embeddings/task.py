"""Task and record types of the ``embeddings`` builder: a vector per input text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fms_dgt import DataPoint, TransformationTask


@dataclass(kw_only=True)
class Text(DataPoint):
    """An input row: the text to embed (map another column with ``data: {columns: {text: ...}}``)."""

    text: str


@dataclass(kw_only=True)
class Embedding(DataPoint):
    """The text, its vector, the model that made it and the vector's length.
    ``model_name`` is ``embedding_model`` again: every catalogue record names its model there."""

    text: str
    embedding: list[float] = field(default_factory=list)
    embedding_model: str = ""
    dimensions: int = 0
    model_name: str | None = None


class EmbeddingsTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``normalize``: scale every vector to unit length (default true, so a dot product is
      the cosine similarity).
    """

    INPUT_DATA_TYPE = Text
    OUTPUT_DATA_TYPE = Embedding

    def __init__(self, *, normalize: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.normalize = normalize
