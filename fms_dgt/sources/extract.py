"""Text (and a title) out of document files: plain text, Markdown, HTML, PDF, and JSON /
JSON Lines records.

- ``.txt`` / ``.md`` / ``.markdown``: the file's text as it is (UTF-8, a leading byte-order
  mark dropped, line ends normalised to ``\\n``). Title: the first Markdown heading
  (``# Title``), else the file name.
- ``.html`` / ``.htm``: the text the page shows, extracted with the standard library's
  ``html.parser``: ``<script>``, ``<style>``, ``<template>``, ``<noscript>``, ``<nav>``,
  ``<title>`` and ``<head>`` content are dropped; whitespace collapses as a browser shows
  it, and block elements (paragraphs, headings, list items, table rows...) start new lines,
  with a blank line between paragraphs. Title: ``<title>``, else the first
  ``<h1>``..``<h6>``, else the file name.
- ``.pdf``: the text pypdf extracts, page by page (pages separated by a blank line); needs
  the optional package ``pypdf`` (``pip install 'fms_dgt[documents]'``). Title: the PDF's
  own title metadata, else the file name.
- ``.jsonl`` / ``.json``: one document per record, its text in ``text_field`` and its title
  in ``title_field`` (else the text's first Markdown heading, else the file name).

A file name becomes a title with ``_`` and ``-`` read as spaces (``tide_tables.md`` ->
"tide tables"). Every problem is a ConfigError naming the file (and line where there is one).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from fms_dgt.errors import ConfigError, MissingDependencyError
from fms_dgt.registry import did_you_mean

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
RECORD_SUFFIXES = (".jsonl", ".json")
SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", *RECORD_SUFFIXES)

_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


@dataclass(frozen=True)
class Extracted:
    """One document's text and title, and where it came from inside its file."""

    text: str
    title: str
    record: int | None = None  # the record's index in a .json / .jsonl file
    line: int | None = None  # the line a .jsonl record is on
    # a record's other fields (an id, a group such as ``domain``...), for builders that use them
    fields: dict[str, Any] = field(default_factory=dict)


def title_from_name(path: Path) -> str:
    """A file name as a title: ``tide_tables.md`` -> "tide tables"."""
    return re.sub(r"[_\-]+", " ", path.stem).strip() or path.name


def markdown_title(text: str) -> str | None:
    """The first Markdown (ATX) heading of ``text``, without its ``#`` marks."""
    match = _HEADING.search(text)
    return match.group(1).strip() if match else None


def read_text(path: Path) -> str:
    """``path`` decoded as UTF-8, without a byte-order mark, with ``\\n`` line ends."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            "not valid UTF-8", file=path, line=line, hint="save the document as UTF-8 text"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def extract(path: Path, text_field: str = "text", title_field: str = "title") -> Iterator[Extracted]:
    """The documents of one file (one, or one per record of a .json / .jsonl file)."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text = read_text(path)
        yield Extracted(text, markdown_title(text) or title_from_name(path))
    elif suffix in HTML_SUFFIXES:
        parser = _PageText()
        parser.feed(read_text(path))
        parser.close()
        yield Extracted(parser.text(), parser.title() or title_from_name(path))
    elif suffix == ".pdf":
        yield _pdf(path)
    elif suffix in RECORD_SUFFIXES:
        yield from _records(path, text_field, title_field)
    else:
        raise ConfigError(
            f"cannot read documents of type '{suffix or path.name}'",
            file=path,
            hint=f"documents may be {', '.join(SUFFIXES)}",
        )


def _records(path: Path, text_field: str, title_field: str) -> Iterator[Extracted]:
    from fms_dgt.datastores.readers import read_located_records

    for i, (line, record) in enumerate(read_located_records(path)):
        text = record.get(text_field)
        if not isinstance(text, str):
            keys = [str(k) for k in record]
            got = "has no" if text is None else f"has a {type(text).__name__} in its"
            raise ConfigError(
                f"record {i} {got} '{text_field}' field (the document text)",
                file=path,
                line=line or 1,
                hint=(did_you_mean(text_field, keys) or f"its keys: {', '.join(keys) or 'none'}")
                + "; documents.text_field names the field",
            )
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        title = record.get(title_field)
        if not isinstance(title, str) or not title.strip():
            title = markdown_title(text) or title_from_name(path)
        others = {k: v for k, v in record.items() if k != text_field}
        yield Extracted(text, title.strip(), record=i, line=line, fields=others)


def _pdf(path: Path) -> Extracted:
    try:
        import pypdf
    except ImportError:
        raise MissingDependencyError(
            f"reading PDF documents needs the package 'pypdf' ({path.name})",
            file=path,
            hint="pip install pypdf  (or: pip install 'fms_dgt[documents]')",
        ) from None
    try:
        reader = pypdf.PdfReader(path)
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        meta: Any = reader.metadata
        meta_title = meta.title if meta is not None else None
    except Exception as exc:  # pypdf raises many kinds for damaged or encrypted files
        raise ConfigError(f"cannot read the PDF: {exc}", file=path, line=1) from None
    text = "\n\n".join(p for p in pages if p).replace("\r\n", "\n").replace("\r", "\n")
    title = meta_title.strip() if isinstance(meta_title, str) and meta_title.strip() else None
    return Extracted(text, title or title_from_name(path))


# elements whose content is not shown; block elements that start a new line
_HIDDEN = frozenset({"script", "style", "template", "noscript", "head", "title", "nav"})
_BLOCK_TAGS = """address article aside blockquote br dd div dl dt fieldset figcaption figure footer
form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table tbody td th thead tr ul"""
_BLOCKS = frozenset(_BLOCK_TAGS.split())
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


class _PageText(HTMLParser):
    """Collects the text an HTML page shows (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside hidden elements
        self.in_title = False
        self.heading: str | None = None  # the heading element being read, if first
        self.title_parts: list[str] = []
        self.heading_parts: list[str] = []
        self.seen_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag in _HEADINGS and not self.seen_heading and not self.hidden:
            self.heading = tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:  # <br/>, <hr/>
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == self.heading:
            self.heading = None
            self.seen_heading = True

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
        if self.hidden:
            return
        data = re.sub(r"\s+", " ", data)
        self.parts.append(data)
        if self.heading is not None:
            self.heading_parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).split("\n"))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()

    def title(self) -> str | None:
        for parts in (self.title_parts, self.heading_parts):
            title = " ".join("".join(parts).split())
            if title:
                return title
        return None
