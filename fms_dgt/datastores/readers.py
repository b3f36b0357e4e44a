"""Reading seed and input records from files: jsonl, json, yaml, csv, parquet, or globs of
them. Every problem is a ConfigError naming the file (and line where there is one)."""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fms_dgt.errors import ConfigError

if TYPE_CHECKING:
    from fms_dgt.config.schema import DataSourceConfig
    from fms_dgt.config.yaml_loader import YamlDoc

_LIST_KEYS = ("seed_examples", "data", "records", "examples")  # a mapping may hold its list here
FORMATS = {
    ".jsonl": "jsonl",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".csv": "csv",
    ".parquet": "parquet",
}


def expand_paths(patterns: str | list[str], base_dir: Path) -> list[Path]:
    """Resolve paths/globs relative to ``base_dir``; a pattern matching nothing is an error."""
    out: list[Path] = []
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        full = pattern if Path(pattern).is_absolute() else str(base_dir / pattern)
        matches = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else [full]
        matches = [m for m in matches if Path(m).exists()]
        if not matches:
            raise ConfigError(
                f"no file matches '{pattern}' (looked in {base_dir})",
                hint="check the path; relative paths are relative to the task.yaml",
            )
        out.extend(Path(m) for m in matches)
    return out


def format_of(path: Path, data_format: str | None = None) -> str | None:
    """The record format of ``path``: ``data_format`` if given, else from the suffix."""
    return data_format or FORMATS.get(path.suffix.lower())


def read_located_records(
    path: Path, data_format: str | None = None
) -> Iterator[tuple[int | None, dict[str, Any]]]:
    """Stream ``(line, record)`` pairs: the 1-based line a record starts on where the format
    has one (jsonl, yaml, csv), so a bad seed record is reported as ``seeds.jsonl:412``."""
    fmt = format_of(path, data_format)
    if fmt is None:
        raise ConfigError(
            f"cannot tell the format of '{path.name}'",
            file=path,
            hint=f"use one of {', '.join(sorted(FORMATS))} or set data_format",
        )
    if fmt == "jsonl":
        yield from _jsonl(path)
    elif fmt == "json":
        for record in _records_of(_load_json(path), path):
            yield None, record
    elif fmt == "yaml":
        from fms_dgt.config.yaml_loader import load_yaml

        doc = load_yaml(path)
        key: tuple[Any, ...] = ()
        if isinstance(doc.data, dict):
            key = next(((k,) for k in _LIST_KEYS if isinstance(doc.data.get(k), list)), ())
        for i, record in enumerate(_records_of(doc.data, path)):
            yield doc.line_of(*key, i), record
    elif fmt == "csv":
        import pandas as pd

        try:
            frame = pd.read_csv(path, keep_default_na=False)
        except Exception as exc:
            raise ConfigError(f"cannot read CSV: {exc}", file=path, line=1) from None
        for i, record in enumerate(frame.to_dict(orient="records")):
            yield i + 2, record  # line 1 is the header
    elif fmt == "parquet" and path.is_dir():
        # a parquet store of ours (``final_data.parquet/part-*.parquet``): the same decoding
        # the store itself uses, so nested fields come back as lists and dicts
        from fms_dgt.datastores.parquet import ParquetStore

        try:
            for record in ParquetStore(path).iter_records():
                yield None, record
        except Exception as exc:
            raise ConfigError(f"cannot read parquet folder: {exc}", file=path) from None
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:
            raise ConfigError(f"cannot read parquet: {exc}", file=path) from None
        for batch in pf.iter_batches():
            for record in batch.to_pylist():
                yield None, record
    else:
        raise ConfigError(f"unknown data_format '{fmt}'", file=path)


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError("not valid UTF-8", file=path, line=lineno) from None
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"invalid JSON: {exc.msg}", file=path, line=lineno) from None
            if not isinstance(record, dict):
                raise ConfigError(
                    f"each line must be a JSON object, got {type(record).__name__}", file=path, line=lineno
                )
            yield lineno, record


def _load_json(path: Path) -> Any:
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("not valid UTF-8", file=path, line=line) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None


def _records_of(data: Any, path: Path) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict):
        for key in _LIST_KEYS:
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            data = [data]
    if not isinstance(data, list):
        raise ConfigError(f"expected a list of records, got {type(data).__name__}", file=path, line=1)
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            raise ConfigError(f"record {i} is a {type(record).__name__}, expected a mapping", file=path)
        yield record


def iter_source_records(
    cfg: DataSourceConfig, base_dir: Path, doc: YamlDoc | None = None, key: str = "seed_datastore"
) -> Iterator[tuple[Path, int | None, int, dict[str, Any]]]:
    """``(file, line, index, record)`` for every record a data source names. A problem with
    the source itself (unknown type, no matching file, unknown format) is reported at its
    line in the task.yaml; a problem inside a data file at the file's own line."""

    def at(err: ConfigError, *sub: str) -> ConfigError:
        if doc is None:
            return err.located(field=".".join((key, *sub)))
        return doc.sub_error(err, key, *sub)

    if cfg.type not in ("default", "file"):
        raise at(
            ConfigError(
                f"unknown seed datastore type '{cfg.type}'",
                hint="use 'default' (files: jsonl, json, yaml, csv, parquet)",
            ),
            "type",
        )
    try:
        paths = expand_paths(cfg.data_path, base_dir)
    except ConfigError as err:
        raise at(err, "data_path") from None
    for path in paths:
        if format_of(path, cfg.data_format) is None:
            raise at(
                ConfigError(
                    f"cannot tell the format of '{path.name}'",
                    hint=f"name it *.jsonl, *.json, *.yaml, *.csv or *.parquet, or set {key}.data_format",
                ),
                "data_path",
            )
    n = 0
    for path in paths:
        for i, (line, raw) in enumerate(read_located_records(path, cfg.data_format)):
            yield path, line, i, raw
            n += 1
            if cfg.limit is not None and n >= cfg.limit:
                return
