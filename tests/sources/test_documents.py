"""The ``documents`` source: reading each format, chunking with exact offsets, choosing a
chunk per call index, and every mistake as a located ConfigError."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fms_dgt.errors import ConfigError, MissingDependencyError
from fms_dgt.sources.documents import Document, DocumentsConfig, chunk_document, load_documents
from fms_dgt.sources.extract import extract
from fms_dgt.sources.tokens import count_tokens, token_spans, windows

PROSE = " ".join(f"word{i}" for i in range(1, 101))  # 100 tokens


def _load(tmp_path: Path, **config: object):
    return load_documents(DocumentsConfig(**config), tmp_path)


def test_tokens_are_runs_of_non_space_with_their_spans() -> None:
    text = "The Moon's orbit takes\n27.3 days."
    assert count_tokens(text) == 6
    assert [text[s:e] for s, e in token_spans(text)] == ["The", "Moon's", "orbit", "takes", "27.3", "days."]
    assert count_tokens("  \n\t ") == 0


def test_windows_overlap_and_end_with_a_full_window() -> None:
    assert windows(0, 4, 1) == []
    assert windows(3, 4, 1) == [(0, 3)]
    assert windows(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert windows(11, 4, 1) == [(0, 4), (3, 7), (6, 10), (7, 11)]  # last one full-size
    assert windows(8, 4, 0) == [(0, 4), (4, 8)]
    for n in range(1, 60):
        for size in (1, 3, 7):
            for overlap in range(size):
                ws = windows(n, size, overlap)
                assert ws[0][0] == 0 and ws[-1][1] == n
                assert all(b - a == min(size, n) for a, b in ws)
                assert all(a2 - a1 <= size - overlap for (a1, _), (a2, _) in zip(ws, ws[1:]))  # overlap kept
                assert len(set(ws)) == len(ws)
    with pytest.raises(ValueError):
        windows(5, 3, 3)


def test_chunks_are_exact_slices_with_offsets_and_indexes(tmp_path: Path) -> None:
    text = "Title line\n\n" + PROSE.replace("word50 ", "word50\n\n")
    doc = Document(tmp_path / "a.txt", "a", text)
    chunks = chunk_document(doc, 30, 5)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.tokens == count_tokens(chunk.text) == 30
        assert not chunk.text[0].isspace() and not chunk.text[-1].isspace()
    for a, b in zip(chunks, chunks[1:-1]):  # the next chunk repeats the last 5 tokens
        assert a.text.split()[-5:] == b.text.split()[:5]
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    lineage = chunks[1].lineage(tmp_path)
    assert lineage == {
        "file": "a.txt",
        "title": "a",
        "chunk": 1,
        "start": chunks[1].start,
        "end": chunks[1].end,
        "tokens": 30,
    }


def test_text_and_markdown_titles(tmp_path: Path) -> None:
    (tmp_path / "tide_tables.txt").write_bytes(b"\xef\xbb\xbfNo heading here.\r\nSecond line.\r\n")
    (tmp_path / "notes.md").write_text("Intro text.\n\n## The Real Title ##\n\nBody.\n")
    notes, tide = _load(tmp_path, path=".").documents  # sorted by name
    assert (notes.title, tide.title) == ("The Real Title", "tide tables")
    assert tide.text == "No heading here.\nSecond line.\n"  # BOM dropped, line ends normalised


def test_html_shows_only_visible_text(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title> Comets &amp; tails </title><style>p {color: red}</style>"
        "<script>var secret = 1;</script></head><body><nav>Home | About</nav>"
        "<h1>Ignored heading</h1><p>A comet's   tail\n points away from the Sun.</p>"
        "<script>alert('x')</script><ul><li>Ice</li><li>Dust</li></ul>Line<br>break</body></html>"
    )
    (doc,) = extract(page)
    assert doc.title == "Comets & tails"
    assert (
        doc.text
        == "Ignored heading\n\nA comet's tail points away from the Sun.\n\nIce\n\nDust\n\nLine\nbreak"
    )
    for hidden in ("secret", "color", "alert", "Home"):
        assert hidden not in doc.text
    (tmp_path / "untitled.htm").write_text("<body><h2>First <b>heading</b></h2><p>Text.</p></body>")
    (doc,) = extract(tmp_path / "untitled.htm")
    assert doc.title == "First heading"


def test_json_and_jsonl_records_are_documents(tmp_path: Path) -> None:
    rows = [{"title": "One", "body": "First text."}, {"body": "# Heading Two\n\nSecond text."}]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "docs.json").write_text(json.dumps({"records": [{"body": "Third.", "name": "Three"}]}))
    source = _load(tmp_path, path=["docs.jsonl", "docs.json"], text_field="body", title_field="name")
    docs = source.documents
    assert [(d.title, d.record, d.line) for d in docs] == [
        ("docs", 0, 1),
        ("Heading Two", 1, 2),
        ("Three", 0, None),
    ]
    source = _load(tmp_path, path="docs.jsonl", text_field="body")
    assert source.documents[0].title == "One"
    assert source.chunks[1].lineage(tmp_path)["record"] == 1


def test_a_missing_text_field_is_located_with_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "docs.jsonl").write_text('{"text": "ok"}\n\n{"txt": "typo"}\n')
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, path="docs.jsonl")
    err = info.value
    assert (Path(err.file or "").name, err.line) == ("docs.jsonl", 3)
    assert "record 1 has no 'text' field" in err.message and "did you mean 'txt'" in (err.hint or "")


def _pdf(path: Path, text: str, title: str | None = None) -> None:
    """A one-page PDF showing ``text`` (written by hand: no PDF writer is needed)."""
    info = f"<< /Title ({title}) >>" if title else "<< >>"
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info.encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))


def test_pdf_text_and_title(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    _pdf(tmp_path / "moon_facts.pdf", "The Moon has no air.", title="Lunar Facts")
    _pdf(tmp_path / "plain.pdf", "Craters everywhere.")
    docs = _load(tmp_path, path="*.pdf").documents
    assert [(d.title, d.text) for d in docs] == [
        ("Lunar Facts", "The Moon has no air."),
        ("plain", "Craters everywhere."),
    ]
    (tmp_path / "broken.pdf").write_bytes(b"not a pdf at all")
    with pytest.raises(ConfigError, match="cannot read the PDF"):
        _load(tmp_path, path="broken.pdf")


def test_pdf_without_pypdf_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypdf", None)  # import pypdf now raises ImportError
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4\n")
    with pytest.raises(MissingDependencyError) as info:
        _load(tmp_path, path="a.pdf")
    assert "pip install pypdf" in (info.value.hint or "") and "fms_dgt[documents]" in (info.value.hint or "")
    assert Path(info.value.file or "").name == "a.pdf"


def test_folders_and_globs_find_supported_files(tmp_path: Path) -> None:
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    (tmp_path / "docs" / ".hidden").mkdir()
    for name in ("b.md", "a.txt", "deep/c.html", "skip.png", ".hidden/x.txt", "deep/.secret.md"):
        (tmp_path / "docs" / name).write_text("Some text.")
    names = [d.file.relative_to(tmp_path / "docs").as_posix() for d in _load(tmp_path, path="docs").documents]
    assert names == ["a.txt", "b.md", "deep/c.html"]
    names = [d.file.name for d in _load(tmp_path, path="docs/**/*").documents]
    assert names == ["a.txt", "b.md", "c.html"]  # the .png is not a document; hidden files skipped by **
    both = _load(tmp_path, path=["docs/a.txt", "docs/*.txt"]).documents
    assert len(both) == 1  # a file named twice is read once


def test_pick_is_deterministic_per_call_index_and_uses_every_chunk(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(PROSE)
    source = _load(tmp_path, path="a.txt", chunk_tokens=10, overlap_tokens=0)
    n = len(source.chunks)
    assert n == 10
    plan = [source.pick(i, 7) for i in range(3 * n)]
    again = _load(tmp_path, path="a.txt", chunk_tokens=10, overlap_tokens=0)
    assert [c.index for c in plan] == [again.pick(i, 7).index for i in range(3 * n)]  # a resumed run
    assert [c.index for c in plan] == [again.pick(i, 7).index for i in reversed(range(3 * n))][::-1]
    for rnd in range(3):  # every chunk once per round, in a new order each round
        assert sorted(c.index for c in plan[rnd * n : (rnd + 1) * n]) == list(range(n))
    assert [c.index for c in plan[:n]] != [c.index for c in plan[n : 2 * n]]
    assert [c.index for c in plan] != [source.pick(i, 8).index for i in range(3 * n)]


@pytest.mark.parametrize(
    ("files", "config", "message"),
    [
        ({}, {"path": "nothing.txt"}, "no file or folder 'nothing.txt'"),
        ({}, {"path": "*.md"}, "no document matches '*.md'"),
        ({"d/x.png": "img"}, {"path": "d"}, "the folder 'd' holds no documents"),
        ({"a.txt": " \n\n "}, {"path": "a.txt"}, "the document is empty"),
        ({"a.jsonl": '{"text": ""}\n'}, {"path": "a.jsonl"}, "record 0's document is empty"),
        ({"a.rst": "Text."}, {"path": "a.rst"}, "cannot read documents of type '.rst'"),
        ({"a.txt": b"ok\n\xff\n"}, {"path": "a.txt"}, "not valid UTF-8"),
    ],
)
def test_mistakes_are_config_errors(
    tmp_path: Path, files: dict[str, object], config: dict[str, object], message: str
) -> None:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")):
        _load(tmp_path, **config)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_text("")
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, path=["missing.txt", "empty.md"])
    text = str(info.value)
    assert "2 problems" in text and "missing.txt" in text and "empty.md:1" in text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"path": "a", "chunk_tokens": 10, "overlap_tokens": 10},
            "overlap_tokens (10) must be below chunk_tokens (10)",
        ),
        ({"path": "a", "chunk_tokens": 0}, "greater than or equal to 1"),
        ({"path": "a", "overlap_tokens": -1}, "greater than or equal to 0"),
        ({"path": []}, "give a file, a glob or a folder"),
        ({"path": "a", "chunk_token": 5}, "Extra inputs are not permitted"),
    ],
)
def test_config_values_are_checked(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DocumentsConfig(**config)  # type: ignore[arg-type]


def test_the_short_form_is_a_path() -> None:
    assert DocumentsConfig.model_validate("docs/").path == "docs/"
    assert DocumentsConfig.model_validate(["a.md", "b.md"]).path == ["a.md", "b.md"]
