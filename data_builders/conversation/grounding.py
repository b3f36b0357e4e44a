"""Conversations grounded in documents: each conversation is about a few documents of the
task's corpus (read by the documents source, ``fms_dgt.sources.documents``): the scenario is
written about them, the assistant answers from them, and the record keeps them.

Which documents conversation ``i`` gets depends only on ``runner_config.seed`` and ``i``:
with ``group_by``, a group is drawn first (``uniform``: every group alike; ``proportional``:
by its number of documents), then ``documents_per_conversation`` distinct documents of that
group, and of each document one of its chunks. A resumed run grounds call ``i`` in the same
passages.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fms_dgt.errors import ConfigError
from fms_dgt.sources.documents import Chunk, Document, DocumentSource


class Grounding(BaseModel):
    """How a conversation draws its documents (a task.yaml ``grounding:``)."""

    model_config = ConfigDict(extra="forbid")

    documents_per_conversation: int = Field(default=3, ge=1, le=20)
    # a record field (``.json`` / ``.jsonl`` documents) naming each document's group
    group_by: str | None = Field(default=None, min_length=1)
    group_strategy: Literal["uniform", "proportional"] = "uniform"
    # the record field holding a document's id (else: its file, and record index)
    id_field: str = Field(default="id", min_length=1)


@dataclass(frozen=True)
class Passage:
    """One document a conversation is grounded in: its id and title, and the chunk of it
    given to the models."""

    id: str
    chunk: Chunk

    @property
    def title(self) -> str:
        return self.chunk.title

    @property
    def text(self) -> str:
        return self.chunk.text

    def shown(self) -> dict[str, str]:
        """What the record keeps: ``{id, title, text}``."""
        return {"id": self.id, "title": self.title, "text": self.text}

    def lineage(self, base_dir: Path) -> dict[str, Any]:
        return {"id": self.id, **self.chunk.lineage(base_dir)}


class DocumentDraw:
    """The documents of a task, grouped, and which of them each conversation gets."""

    def __init__(self, source: DocumentSource, grounding: Grounding, base_dir: Path) -> None:
        self.grounding = grounding
        self.base_dir = base_dir
        chunks: dict[int, list[Chunk]] = {}
        for chunk in source.chunks:
            chunks.setdefault(id(chunk.document), []).append(chunk)
        self.documents = [d for d in source.documents if id(d) in chunks]
        self.chunks = [chunks[id(d)] for d in self.documents]
        self.groups: dict[str, list[int]] = {"": list(range(len(self.documents)))}
        if grounding.group_by is not None:
            self.groups = self._grouped(grounding.group_by)
        self.names = sorted(self.groups)

    def _grouped(self, field: str) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, document in enumerate(self.documents):
            value = document.fields.get(field)
            if value is None or isinstance(value, (dict, list)) or str(value).strip() == "":
                raise _without(document, field, "a group")
            groups.setdefault(str(value), []).append(i)
        return groups

    def document_id(self, document: Document) -> str:
        value = document.fields.get(self.grounding.id_field)
        if value is not None and not isinstance(value, (dict, list)) and str(value).strip():
            return str(value)
        where = self._file(document)
        return where if document.record is None else f"{where}#{document.record}"

    def _file(self, document: Document) -> str:
        try:
            return document.file.resolve().relative_to(self.base_dir.resolve()).as_posix()
        except ValueError:
            return document.file.name

    def draw(self, call_index: int, seed: int | None) -> list[Passage]:
        """The passages conversation ``call_index`` is grounded in (the same for the same
        seed and index)."""
        rng = random.Random(f"{seed}:{call_index}:grounding")
        if self.grounding.group_strategy == "uniform":
            group = rng.choice(self.names)
        else:
            group = rng.choices(self.names, weights=[len(self.groups[n]) for n in self.names])[0]
        members = self.groups[group]
        picked = rng.sample(members, min(self.grounding.documents_per_conversation, len(members)))
        return [Passage(self.document_id(self.documents[i]), rng.choice(self.chunks[i])) for i in picked]


def _without(document: Document, field: str, what: str) -> ConfigError:
    where = "the document" if document.record is None else f"record {document.record}"
    return ConfigError(
        f"{where} has no '{field}' field ({what}: grounding.group_by names it)",
        file=document.file,
        line=document.line or 1,
        hint=f"its fields: {', '.join(map(str, document.fields)) or 'none'}",
    )
