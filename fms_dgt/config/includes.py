"""The ``include:`` section of a task.yaml: other files' contents as task keys.

As the task.yaml format documents it (IBM fms-dgt's knowledge tasks use it to name their
documents)::

    include:
      documents:
        history: ${DGT_DATA_DIR}/ibm/origins.md          # files for the documents source
        chapters: ${DGT_DATA_DIR}/ibm/chapter_*.md
      seed_examples: more_seeds.yaml                     # a YAML file: its data

Each value is a path (or a mapping or list of them): ``${VAR}`` expanded, relative to the
task.yaml, a glob meaning every match. ``documents`` becomes ``documents: {path: [...]}``,
the files read by the documents source (``fms_dgt.sources``) like any other documents. For
other keys a ``.yaml``/``.yml`` file contributes its data, a ``.jsonl`` file its records, a
``.json`` file its document, any other file its text. The included keys come first; the
task.yaml's own keys win over them.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

from fms_dgt.config.env import expand_env
from fms_dgt.config.yaml_loader import YamlDoc, load_yaml
from fms_dgt.errors import ConfigError

INCLUDE = "include"
# included documents are named, not read: the documents source reads them (extraction,
# chunking, offsets and lineage) as it does for ``documents: {path: ...}``
DOCUMENTS = "documents"


def apply_includes(doc: YamlDoc) -> YamlDoc:
    """``doc`` with its ``include:`` section read and merged under its own keys (the
    section itself removed); ``doc`` unchanged when there is none."""
    if not isinstance(doc.data, dict) or INCLUDE not in doc.data:
        return doc
    spec = doc.data[INCLUDE]
    if not isinstance(spec, dict):
        raise doc.error(
            "'include' must map task keys to files",
            INCLUDE,
            hint="e.g. include: {documents: {name: file.md}}",
        )
    included = {
        key: {"path": _document_paths(value, doc, (INCLUDE, key))}
        if key == DOCUMENTS
        else _read(value, doc, (INCLUDE, key))
        for key, value in spec.items()
    }
    own = {k: v for k, v in doc.data.items() if k != INCLUDE}
    merged = {**included, **own}
    origins = dict(doc.origins)
    for key in included:
        if key not in own:  # an error in included data points at the include that brought it
            origins[(key,)] = (doc.path, doc.line_of(INCLUDE, key))
    return YamlDoc(doc.path, merged, doc.lines, origins)


def _read(value: Any, doc: YamlDoc, key: tuple[Any, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _read(v, doc, (*key, k)) for k, v in value.items()}
    if isinstance(value, list):
        out: list[Any] = []
        for i, item in enumerate(value):
            got = _read(item, doc, (*key, i))
            out.extend(
                got if isinstance(got, list) and isinstance(item, str) and glob.has_magic(item) else [got]
            )
        return out
    if not isinstance(value, str):
        raise doc.error(f"an include must name a file, got {type(value).__name__}", *key)
    pattern = expand_env(value, doc=doc, key=key)
    full = pattern if Path(pattern).is_absolute() else str(doc.path.parent / pattern)
    if glob.has_magic(full):
        matches = sorted(Path(m) for m in glob.glob(full, recursive=True) if Path(m).is_file())
        if not matches:
            raise doc.error(f"no file matches '{value}'", *key, hint="paths are relative to the task.yaml")
        return [_contents(m, doc, key) for m in matches]
    path = Path(full)
    if not path.is_file():
        raise doc.error(f"included file '{value}' does not exist", *key, hint=f"looked for {path}")
    return _contents(path, doc, key)


def _document_paths(value: Any, doc: YamlDoc, key: tuple[Any, ...]) -> list[str]:
    """The files and globs ``value`` names (a path, or a mapping or list of them; the
    mapping's keys only group them), each checked to exist."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _document_paths(v, doc, (*key, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _document_paths(v, doc, (*key, i))]
    if not isinstance(value, str):
        raise doc.error(f"an include must name a file, got {type(value).__name__}", *key)
    pattern = expand_env(value, doc=doc, key=key)
    full = pattern if Path(pattern).is_absolute() else str(doc.path.parent / pattern)
    found = glob.glob(full, recursive=True) if glob.has_magic(full) else [full] * Path(full).exists()
    if not found:
        raise doc.error(f"no file matches '{value}'", *key, hint="paths are relative to the task.yaml")
    return [full]


def _contents(path: Path, doc: YamlDoc, key: tuple[Any, ...]) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            return load_yaml(path).data
        if suffix == ".jsonl":
            from fms_dgt.datastores.readers import read_located_records

            return [record for _, record in read_located_records(path)]
        if suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        return path.read_text(encoding="utf-8")
    except ConfigError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise doc.error(f"cannot read included file {path.name}: {exc}", *key) from None
