"""Reading seed and input records from files: jsonl, json, yaml, csv, parquet, a Hugging
Face ``datasets`` dataset saved with ``save_to_disk``; files, globs or folders of them.

Every format is streamed (a 1M-row input never sits in memory; a JSON document, which
cannot be read in part, is the exception). Every problem is a ConfigError naming the file
(and line where there is one)."""

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


DATASET_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


def is_dataset_folder(path: Path) -> bool:
    """A folder written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return path.is_dir() and any((path / marker).is_file() for marker in DATASET_MARKERS)


def expand_paths(patterns: str | list[str], base_dir: Path) -> list[Path]:
    """Resolve paths/globs relative to ``base_dir``; a pattern matching nothing is an error.
    A plain folder stands for the record files in it (recursively, in name order); a
    ``datasets`` folder or a parquet store folder of ours is one input."""
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
        for match in map(Path, matches):
            if match.is_dir() and format_of(match) is None:
                inside = sorted(p for p in match.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
                if not inside:
                    raise ConfigError(
                        f"folder '{pattern}' holds no record files",
                        hint=f"record files end in {', '.join(sorted(FORMATS))}",
                    )
                out.extend(inside)
            else:
                out.append(match)
    return out


def format_of(path: Path, data_format: str | None = None) -> str | None:
    """The record format of ``path``: ``data_format`` if given, else a ``datasets`` folder,
    else from the suffix."""
    if data_format:
        return data_format
    if is_dataset_folder(path):
        return "datasets"
    return FORMATS.get(path.suffix.lower())


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
        yield from _csv(path)
    elif fmt == "datasets":
        yield from _dataset(path)
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
        for batch in pf.iter_batches(batch_size=4096):  # a few MB at a time, whatever the file
            for record in batch.to_pylist():
                yield None, record
    else:
        raise ConfigError(f"unknown data_format '{fmt}'", file=path)


CSV_CHUNK_ROWS = 10_000


def _csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV rows in chunks (line numbers assume one line per row, as most CSVs are)."""
    import pandas as pd

    try:
        chunks = pd.read_csv(path, keep_default_na=False, chunksize=CSV_CHUNK_ROWS)
        row = 0
        for frame in chunks:
            for record in frame.to_dict(orient="records"):
                yield row + 2, {str(k): v for k, v in record.items()}  # line 1 is the header
                row += 1
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot read CSV: {exc}", file=path, line=1) from None


def _dataset(path: Path) -> Iterator[tuple[None, dict[str, Any]]]:
    """Rows of a ``datasets`` folder, batch by batch from its memory-mapped Arrow files;
    every split of a DatasetDict, in its order."""
    from fms_dgt.blocks.base import require

    datasets = require("datasets", "datasets", "reading a dataset saved with save_to_disk")
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise ConfigError(f"cannot read the dataset folder: {exc}", file=path) from None
    parts = list(loaded.values()) if isinstance(loaded, datasets.DatasetDict) else [loaded]
    for part in parts:
        for batch in part.iter(batch_size=1000):
            keys = list(batch)
            for values in zip(*(batch[k] for k in keys)):
                yield None, dict(zip(keys, values))


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
    columns = cfg.columns or {}
    renamed = set(columns.values())
    for path in paths:
        for i, (line, raw) in enumerate(read_located_records(path, cfg.data_format)):
            if columns:
                mapped = {k: v for k, v in raw.items() if k not in renamed}
                mapped.update((field, raw[col]) for field, col in columns.items() if col in raw)
                raw = mapped
            yield path, line, i, raw
            n += 1
            if cfg.limit is not None and n >= cfg.limit:
                return
