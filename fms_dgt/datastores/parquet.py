"""Parquet storage for the file datastore: durable appends through a jsonl write-ahead log,
compacted into immutable part files.

Nested values (dicts, lists: chat messages, lineage) are stored as native Arrow structs
and lists, so ``pyarrow``, ``datasets``, pandas and DuckDB read them as data rather than
text. A column whose values Arrow cannot hold natively *exactly* (mixed types; dicts with
different keys, which Arrow would widen to one struct with nulls) falls back to JSON
strings for that part, listed in the part's schema metadata so it reads back as the same
Python values. Parts written before nested values were native (everything nested as JSON)
read back unchanged through the same metadata."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fms_dgt.datastores.files import JsonlFile, iter_jsonl, repair_jsonl

_META_KEY = b"fms_dgt.json_columns"
ROW_GROUP_ROWS = 5_000  # rows per parquet row group (see _write_part)


class ParquetStore:
    """``<name>.parquet/part-NNNNN.parquet`` + ``<name>.parquet/wal.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal_path = path / "wal.jsonl"
        self._wal = JsonlFile(self.wal_path)
        self._pending = 0
        self._recovered = False

    # ---- parts -------------------------------------------------------------------
    def _parts(self) -> list[Path]:
        return sorted(self.path.glob("part-*.parquet")) if self.path.exists() else []

    def _next_part(self) -> int:
        parts = self._parts()
        return int(parts[-1].stem.split("-")[1]) + 1 if parts else 0

    def _wal_generation(self) -> tuple[int | None, list[dict[str, Any]]]:
        records = list(iter_jsonl(self.wal_path))
        if records and "__wal_part__" in records[0]:
            return int(records[0]["__wal_part__"]), records[1:]
        return None, records

    def _recover(self) -> None:
        """Settle what an interrupted run left before appending to the log again: cut a torn
        tail (a torn header leaves an empty log that gets a fresh header), drop a log whose
        part was already written (else new appends would hide behind that part), and turn
        records of a log without header into a part of their own."""
        if self._recovered:
            return
        self._recovered = True
        if not self.wal_path.exists():
            return
        repair_jsonl(self.wal_path)
        generation, records = self._wal_generation()
        if generation is None and records:
            _write_part(self.path / f"part-{self._next_part():05d}.parquet", records)
            self.wal_path.unlink()
        elif generation is not None and (self._part_path(generation).exists() or not records):
            self.wal_path.unlink()

    def _part_path(self, generation: int) -> Path:
        return self.path / f"part-{generation:05d}.parquet"

    # ---- writes ------------------------------------------------------------------
    def append(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        self._recover()
        if not self.wal_path.exists() or self.wal_path.stat().st_size == 0:
            self.path.mkdir(parents=True, exist_ok=True)
            self._wal.append([{"__wal_part__": self._next_part()}])
        self._wal.append(records)
        self._pending += len(records)

    def compact(self) -> None:
        """Turn the write-ahead log into a part file (idempotent after a crash)."""
        self._wal.close()
        if not self.wal_path.exists():
            return
        generation, records = self._wal_generation()
        if records and generation is None:  # a log without header (see _recover)
            generation = self._next_part()
        if records and not self._part_path(generation).exists():  # type: ignore[arg-type]
            _write_part(self._part_path(generation), records)  # type: ignore[arg-type]
        self.wal_path.unlink(missing_ok=True)
        self._pending = 0

    def replace(self, records: Iterable[dict[str, Any]]) -> int:
        self._wal.close()
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        n = 0
        part = 0
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) >= 50_000:
                _write_part(tmp / f"part-{part:05d}.parquet", batch)
                n, part, batch = n + len(batch), part + 1, []
        if batch or part == 0:
            _write_part(tmp / f"part-{part:05d}.parquet", batch)
            n += len(batch)
        old = self.path.with_name(f".{self.path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            os.replace(self.path, old)
        os.replace(tmp, self.path)
        shutil.rmtree(old, ignore_errors=True)
        return n

    def clear(self) -> None:
        self._wal.close()
        shutil.rmtree(self.path, ignore_errors=True)

    # ---- reads -------------------------------------------------------------------
    def iter_records(self) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        if not self.path.exists():
            # an interrupted replace() may have left only the old copy
            old = self.path.with_name(f".{self.path.name}.old")
            if old.exists():
                os.replace(old, self.path)
            else:
                return
        generation, wal_records = self._wal_generation()
        for part in self._parts():
            pf = pq.ParquetFile(part)
            meta = pf.schema_arrow.metadata or {}
            json_cols = set(json.loads(meta.get(_META_KEY, b"[]")))
            for batch in pf.iter_batches(batch_size=4096):
                for row in batch.to_pylist():
                    for col in json_cols:
                        if row.get(col) is not None:
                            row[col] = json.loads(row[col])
                    yield row
        if generation is not None and (self.path / f"part-{generation:05d}.parquet").exists():
            return  # the log was already compacted; a crash kept it around
        yield from wal_records


def _write_part(path: Path, records: Sequence[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {}
    for i, record in enumerate(records):
        for key in record:
            if key not in columns:
                columns[key] = [None] * i
        for key, values in columns.items():
            values.append(record.get(key))
    json_cols = []
    arrays = {}
    for key, values in columns.items():
        array = _native(values)
        if array is None:
            json_cols.append(key)
            array = pa.array(
                [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values]
            )
        arrays[key] = array
    table = pa.table(arrays) if arrays else pa.table({})
    table = table.replace_schema_metadata({_META_KEY: json.dumps(json_cols).encode()})
    tmp = path.with_name(f".{path.name}.tmp")
    # small row groups: a reader that wants rows from the middle of a part (the viewer's
    # pages) decodes one group of ROW_GROUP_ROWS rows, not the whole part
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _native(values: list[Any]) -> Any | None:
    """``values`` as an Arrow array that reads back as exactly ``values``, or None. Flat
    columns are checked by Arrow's own conversion; nested ones by a round trip, since Arrow
    widens dicts with different keys to one struct (the missing keys reading back as None)."""
    import pyarrow as pa

    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None
    if pa.types.is_nested(array.type) and array.to_pylist() != values:
        return None
    return array
