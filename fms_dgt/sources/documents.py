"""The ``documents`` data source: documents read from files, globs or folders, cut into
chunks of ``chunk_tokens`` tokens that overlap by ``overlap_tokens``. Every chunk knows its
file, its index in its document and its character offsets into the document's text
(``chunk.text == chunk.document.text[chunk.start:chunk.end]``).

In a task.yaml::

    documents:
      path: documents/          # a file, a glob or a folder (read recursively), or a list of them
      chunk_tokens: 300         # tokens per chunk (see fms_dgt.sources.tokens: words, not model tokens)
      overlap_tokens: 30        # tokens each chunk repeats from the one before
      text_field: text          # .json / .jsonl records: the field holding a document's text
      title_field: title        # ... and the one holding its title

or in short ``documents: documents/``. Supported files: see ``fms_dgt.sources.extract``.

Which chunk builder call ``i`` is grounded in depends only on the seed and ``i``
(``DocumentSource.pick``), as sampler values do: a resumed run asks what it would have asked.
"""

from __future__ import annotations

import glob
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.errors import ConfigError, Problems
from fms_dgt.sources.extract import SUFFIXES, extract
from fms_dgt.sources.tokens import token_spans, windows


class DocumentsConfig(BaseModel):
    """Where a task's documents are and how they are chunked (a task.yaml ``documents:``)."""

    model_config = ConfigDict(extra="forbid")

    path: str | list[str]
    chunk_tokens: int = Field(default=300, ge=1)
    overlap_tokens: int = Field(default=30, ge=0)
    text_field: str = Field(default="text", min_length=1)
    title_field: str = Field(default="title", min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, (str, list)) else value

    @field_validator("path")
    @classmethod
    def _some_path(cls, value: str | list[str]) -> str | list[str]:
        paths = [value] if isinstance(value, str) else value
        if not paths or not all(p.strip() for p in paths):
            raise ValueError("give a file, a glob or a folder of documents")
        return value

    @field_validator("overlap_tokens")
    @classmethod
    def _below_chunk(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("chunk_tokens")
        if size is not None and value >= size:
            raise ValueError(
                f"overlap_tokens ({value}) must be below chunk_tokens ({size}): "
                "each chunk has to move on by at least one token"
            )
        return value


@dataclass(frozen=True, eq=False)
class Document:
    """One document: its file, title and text (and its record, for .json / .jsonl files)."""

    file: Path
    title: str
    text: str
    record: int | None = None
    line: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # a record's fields besides its text


@dataclass(frozen=True, eq=False)
class Chunk:
    """A slice of a document: tokens ``[first, last)`` at characters ``[start, end)``."""

    document: Document
    index: int  # its place among its document's chunks, from 0
    start: int
    end: int
    tokens: int

    @property
    def text(self) -> str:
        return self.document.text[self.start : self.end]

    @property
    def file(self) -> Path:
        return self.document.file

    @property
    def title(self) -> str:
        return self.document.title

    def lineage(self, base_dir: Path | None = None) -> dict[str, Any]:
        """Where this chunk is: its file (relative to ``base_dir`` when inside it), title,
        record (for .json / .jsonl), chunk index and character offsets."""
        out: dict[str, Any] = {"file": _shown(self.file, base_dir), "title": self.title}
        if self.document.record is not None:
            out["record"] = self.document.record
        out.update(chunk=self.index, start=self.start, end=self.end, tokens=self.tokens)
        return out


def chunk_document(document: Document, chunk_tokens: int, overlap_tokens: int) -> list[Chunk]:
    """``document`` cut into chunks (see ``fms_dgt.sources.tokens.windows``)."""
    spans = token_spans(document.text)
    return [
        Chunk(document, i, spans[first][0], spans[last - 1][1], last - first)
        for i, (first, last) in enumerate(windows(len(spans), chunk_tokens, overlap_tokens))
    ]


class DocumentSource:
    """A task's documents and their chunks, and which chunk each builder call gets."""

    def __init__(self, documents: list[Document], chunk_tokens: int, overlap_tokens: int) -> None:
        self.documents = documents
        self.chunks = [c for d in documents for c in chunk_document(d, chunk_tokens, overlap_tokens)]
        if not self.chunks:
            raise ConfigError("there are no documents to ground generation in")
        self._orders: dict[tuple[int | None, int], list[int]] = {}

    def pick(self, call_index: int, seed: int | None = None) -> Chunk:
        """The chunk of builder call ``call_index``: every chunk once per round of
        ``len(chunks)`` calls, in an order shuffled anew each round from ``seed``, so chunks
        are used evenly and the same seed and index always give the same chunk."""
        n = len(self.chunks)
        rnd, pos = divmod(call_index, n)
        order = self._orders.get((seed, rnd))
        if order is None:
            order = list(range(n))
            random.Random(f"{seed}:documents:{rnd}").shuffle(order)
            if len(self._orders) >= 4:  # calls in flight span at most two rounds
                self._orders.clear()
            self._orders[(seed, rnd)] = order
        return self.chunks[order[pos]]


def load_documents(
    config: DocumentsConfig, base_dir: Path, doc: YamlDoc | None = None, key: tuple[Any, ...] = ("documents",)
) -> DocumentSource:
    """Read, check and chunk the documents ``config`` names; relative paths start at
    ``base_dir`` (the task.yaml's folder). A path that matches nothing is reported at its line
    in the task.yaml; a problem inside a document at the document's file (and line). Every
    problem is reported at once."""
    problems = Problems()
    patterns = [config.path] if isinstance(config.path, str) else list(config.path)
    files: dict[Path, None] = {}
    for i, pattern in enumerate(patterns):
        with problems.check():
            try:
                files.update(dict.fromkeys(find_files(pattern, base_dir)))
            except ConfigError as err:
                at = (*key, "path") if isinstance(config.path, str) else (*key, "path", i)
                raise doc.sub_error(err, *at) if doc else err.located(field=".".join(map(str, at))) from None
    documents: list[Document] = []
    for file in files:
        with problems.check():
            for found in extract(file, config.text_field, config.title_field):
                if not found.text.strip():
                    what = "the document" if found.record is None else f"record {found.record}'s document"
                    raise ConfigError(
                        f"{what} is empty: there is no text to ground generation in",
                        file=file,
                        line=found.line or 1,
                        hint="add text, or leave the file out of documents.path",
                    )
                documents.append(
                    Document(file, found.title, found.text, found.record, found.line, found.fields)
                )
    problems.raise_if_any()
    return DocumentSource(documents, config.chunk_tokens, config.overlap_tokens)


def find_files(pattern: str, base_dir: Path) -> list[Path]:
    """The document files ``pattern`` names: a file; a folder (every supported file under it,
    hidden ones skipped); or a glob (``**`` included; only supported files, and what is under
    the folders it matches). Sorted; a pattern that finds nothing is an error."""
    full = pattern if Path(pattern).is_absolute() else str(base_dir / pattern)
    if not glob.has_magic(full):
        path = Path(full)
        if path.is_file():
            return [path]
        if path.is_dir():
            found = sorted(_under(path))
            if not found:
                raise ConfigError(
                    f"the folder '{pattern}' holds no documents",
                    hint=f"documents are files named *{', *'.join(SUFFIXES)}",
                )
            return found
        raise ConfigError(
            f"no file or folder '{pattern}' (looked in {base_dir})",
            hint="check the path; relative paths are relative to the task.yaml",
        )
    found = []
    for match in sorted(glob.glob(full, recursive=True)):
        path = Path(match)
        if path.is_dir():
            found.extend(sorted(_under(path)))
        elif path.suffix.lower() in SUFFIXES:
            found.append(path)
    if not found:
        raise ConfigError(
            f"no document matches '{pattern}' (looked in {base_dir})",
            hint=f"documents are files named *{', *'.join(SUFFIXES)}; relative paths start at the task.yaml",
        )
    return found


def _under(folder: Path) -> Iterator[Path]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in SUFFIXES:
                yield Path(root) / name


def _shown(path: Path, base_dir: Path | None) -> str:
    if base_dir is not None:
        try:
            return path.resolve().relative_to(base_dir.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()
