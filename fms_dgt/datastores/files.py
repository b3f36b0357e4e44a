"""The default datastore: files under ``<output_dir>/<task_name>/``.

jsonl: one record per line, appended and flushed per batch; a torn last line (crash in
mid-write) is cut off when the store is opened for appending, with a warning.

parquet: a folder ``<store>.parquet/`` of part files plus a jsonl write-ahead log. Appends
go to the log (so they are durable at once); ``sync``/``close`` compact the log into a new
part written atomically. The log's first line names the part it will become, so a crash
between writing the part and emptying the log never duplicates records.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fms_dgt.datastores.base import Datastore, writing
from fms_dgt.errors import DatastoreError

log = logging.getLogger("fms_dgt.datastores")

try:
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, default=str, option=orjson.OPT_SERIALIZE_NUMPY)

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is optional

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, default=str).encode()

    _loads = json.loads  # type: ignore[assignment]


def encode_lines(records: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(_dumps(r) + b"\n" for r in records)


def repair_jsonl(path: Path) -> int:
    """Cut a torn last line off ``path``; returns the bytes removed.

    A last line that is a whole record and only lacks its newline is kept (the newline is
    added): readers count such a record, and cutting it here would make the count a resumed
    run rebuilt from the file disagree with the file it then appends to."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        # find the last newline; everything after it is a partial record
        block = 1 << 16
        pos = size
        cut = 0
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                cut = start + idx + 1
                break
            pos = start
        fh.seek(cut)
        tail = fh.read()
        try:
            whole = isinstance(_loads(tail), dict)
        except ValueError:
            whole = False
        if whole:
            fh.seek(0, os.SEEK_END)
            fh.write(b"\n")
            return 0
        fh.truncate(cut)
    log.warning("%s: dropped a torn last record (%d bytes) left by an interrupted run", path, size - cut)
    return size - cut


def _whole(line: bytes) -> bool:
    try:
        return isinstance(_loads(line), dict)
    except ValueError:
        return False


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Stream records; a torn final line is skipped with a warning, a corrupt middle line is
    an error naming the line."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        lineno = 0
        for raw in fh:
            lineno += 1
            if not raw.strip():
                continue
            try:
                yield _loads(raw)
            except ValueError:
                if not raw.endswith(b"\n") and not fh.read(1):
                    log.warning("%s:%d: skipping a torn last record", path, lineno)
                    return
                raise DatastoreError(f"{path}:{lineno}: corrupt record (not JSON)") from None


class JsonlFile:
    """An append handle on a jsonl file (repairs a torn tail on open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            repair_jsonl(self.path)
            self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open across appends
        self._fh.write(encode_lines(records))
        self._fh.flush()

    def sync(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                with contextlib.suppress(OSError):  # a failed flush is reported above, once
                    fh.close()


def replace_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with open(tmp, "wb") as fh:
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) >= 1000:
                fh.write(encode_lines(batch))
                n += len(batch)
                batch.clear()
        fh.write(encode_lines(batch))
        n += len(batch)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return n


class FileDatastore(Datastore):
    """jsonl or parquet files in ``<output_dir>/<task_name>/``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.output_data_format not in ("jsonl", "parquet"):
            raise ValueError(f"output_data_format must be jsonl or parquet, not {self.output_data_format!r}")
        self.task_dir = self.output_dir / self.task_name
        if self.output_data_format == "jsonl":
            self.path = self.task_dir / f"{self.store_name}.jsonl"
            self._file = JsonlFile(self.path)
        else:
            from fms_dgt.datastores.parquet import ParquetStore

            self.path = self.task_dir / f"{self.store_name}.parquet"
            self._parquet = ParquetStore(self.path)

    @property
    def location(self) -> str:
        return str(self.path)

    def save_data(self, records: Sequence[dict[str, Any]]) -> None:
        with writing(self.path):
            if self.output_data_format == "jsonl":
                self._file.append(records)
            else:
                self._parquet.append(records)

    def load_data(self) -> Iterator[dict[str, Any]]:
        if self.output_data_format == "jsonl":
            return iter_jsonl(self.path)
        return self._parquet.iter_records()

    def replace(self, records: Iterable[dict[str, Any]]) -> int:
        with writing(self.path):
            if self.output_data_format == "jsonl":
                self._file.close()
                return replace_jsonl(self.path, records)
            return self._parquet.replace(records)

    def exists(self) -> bool:
        return self.path.exists()

    def count(self) -> int:
        if self.output_data_format != "jsonl":
            return super().count()
        if not self.path.exists():
            return 0
        n = 0
        with open(self.path, "rb") as fh:  # one record per line, counted without parsing it
            for line in fh:
                if line.endswith(b"\n"):
                    n += bool(line.strip())
                elif line.strip():  # a last line without newline counts if it is whole
                    n += _whole(line)
        return n

    def clear(self) -> None:
        self.close()
        if self.output_data_format == "jsonl":
            self.path.unlink(missing_ok=True)
        else:
            self._parquet.clear()

    def sync(self) -> None:
        with writing(self.path):
            if self.output_data_format == "jsonl":
                self._file.sync()
            else:
                self._parquet.compact()

    def close(self) -> None:
        with writing(self.path):
            if self.output_data_format == "jsonl":
                self._file.close()
            else:
                self._parquet.compact()
