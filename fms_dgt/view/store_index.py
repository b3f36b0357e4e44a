"""Random access into a task's stores without loading them: the viewer's paging engine.

A jsonl store is indexed by the byte offset of every line, kept in this process's memory
(8 bytes a record: 8 MB for a million records) and never written into the user's output
folder (the viewer is read-only, and a run may be writing there). The index grows
incrementally: each request stats the file and scans only the bytes appended since, so a
store a run is still writing pages as it grows; a file that shrank or was replaced (a
postprocessing pass rewrites ``final_data`` through a rename) is indexed again. A torn last
line (a write in progress) is left out until its newline arrives.

A parquet store (``<name>.parquet/``: immutable part files plus a jsonl write-ahead log) is
paged through its row-group metadata: a page reads only the row groups it overlaps, then
the log's lines through a jsonl index of their own.

Full-text search is a scan of the raw bytes (jsonl) or of the string leaves of each row
group (parquet, vectorised by ``pyarrow.compute``), case-insensitive for ASCII letters, and
every candidate is checked against the record's values so that a key name never matches.
"""

from __future__ import annotations

import json
import os
import threading
import time
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fms_dgt.datastores.files import _loads

CHUNK = 1 << 23  # bytes read at a time when indexing or searching a jsonl file
BACKGROUND_BYTES = 64 << 20  # a first index of more than this is built in the background
HEAD_ROWS = 4096  # rows of a row group read without reading the whole group
TICK = -1  # yielded by searches between chunks: not a position


def value_text(value: Any) -> str:
    """All the strings of a record's values (keys left out), for search verification."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(value_text(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return "\n".join(value_text(v) for v in value)
    return "" if value is None else str(value)


def matches(record: Any, query: str) -> bool:
    return query.lower() in value_text(record).lower()


class _Lookup:
    """What both store indexes answer the same way on top of their ``search`` and ``read``."""

    def search(self, query: str) -> Iterator[int]:
        raise NotImplementedError

    def read(self, start: int, count: int) -> list[tuple[int, Any]]:
        raise NotImplementedError

    def find_id(self, record_id: str) -> int | None:
        """Position of the record whose top-level ``id`` is ``record_id`` (found by search,
        then checked: the id may occur inside another record too)."""
        for pos in self.search(record_id):
            if pos == TICK:
                continue
            rec = self.read(pos, 1)
            if rec and isinstance(rec[0][1], dict) and rec[0][1].get("id") == record_id:
                return pos
        return None


class JsonlIndex(_Lookup):
    """Line offsets of one jsonl file, brought up to date by ``refresh``."""

    def __init__(
        self, path: Path, skip_header: bool = False, background_bytes: int = BACKGROUND_BYTES
    ) -> None:
        self.path = path
        self.skip_header = skip_header  # a parquet write-ahead log's first line is not a record
        self.background_bytes = background_bytes
        self._offsets = np.zeros(1024, dtype=np.int64)  # start of line i; _offsets[n] = end
        self._n = 0
        self._end = 0  # bytes indexed (always just after a newline)
        self._ident: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._builder: threading.Thread | None = None

    def __len__(self) -> int:
        return max(0, self._n - (1 if self.skip_header and self._n else 0))

    @property
    def building(self) -> bool:
        """True while a first index of a big file is still being built in the background
        (``len`` is then the records indexed so far)."""
        return self._builder is not None and self._builder.is_alive()

    def refresh(self) -> int:
        """Index what was appended since the last call; returns the number of records.

        The first index of a big file is built in a background thread, so the first pages
        answer at once; until it ends, ``len`` grows and ``building`` is True."""
        with self._lock:
            if self.building:
                return len(self)
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                self._reset(None)
                return 0
            ident = (st.st_dev, st.st_ino)
            if ident != self._ident or st.st_size < self._end:
                self._reset(ident)
            if st.st_size - self._end > self.background_bytes:
                # small steps: the thread holds the GIL briefly, so pages answer meanwhile
                self._builder = threading.Thread(target=self._scan, args=(st.st_size, 1 << 20), daemon=True)
                self._builder.start()
                deadline = time.perf_counter() + 0.05  # the first pages, at least
                while self.building and self._n < 1000 and time.perf_counter() < deadline:
                    time.sleep(0.002)
            elif st.st_size > self._end:
                self._scan(st.st_size)
            return len(self)

    def _reset(self, ident: tuple[int, int] | None) -> None:
        self._ident, self._n, self._end = ident, 0, 0

    def _scan(self, size: int, chunk_size: int = CHUNK) -> None:
        with open(self.path, "rb") as fh:
            fh.seek(self._end)
            pos = self._end
            step = 1 << 20  # small at first (the first pages), then chunk_size
            while pos < size:
                chunk = fh.read(min(step, size - pos))
                step = chunk_size
                if not chunk:
                    break
                ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10) + pos + 1
                if len(ends):
                    self._append(ends)
                    self._end = int(ends[-1])
                pos += len(chunk)
            # blank lines are rare (never written by the datastore); they read as None

    def _append(self, ends: np.ndarray) -> None:
        need = self._n + len(ends) + 1
        if need > len(self._offsets):
            grown = np.zeros(max(need, 2 * len(self._offsets)), dtype=np.int64)
            grown[: self._n + 1] = self._offsets[: self._n + 1]
            self._offsets = grown
        self._offsets[self._n + 1 : self._n + 1 + len(ends)] = ends
        self._n += len(ends)

    def _span(self, line: int) -> tuple[int, int]:
        return int(self._offsets[line]), int(self._offsets[line + 1])

    def read(self, start: int, count: int) -> list[tuple[int, Any]]:
        """Records ``start`` .. ``start+count`` as (position, record); a line that does not
        parse reads as None."""
        start = max(0, start)
        return [(start + i, _parse(raw)) for i, raw in enumerate(self.read_raw(start, count))]

    def read_raw(self, start: int, count: int) -> list[bytes]:
        """The bytes of lines ``start`` .. ``start+count`` (one read of the file)."""
        base = 1 if self.skip_header else 0
        start = max(0, start)
        stop = min(len(self), start + count)
        if stop <= start:
            return []
        first, last = self._span(start + base)[0], self._span(stop - 1 + base)[1]
        with open(self.path, "rb") as fh:
            fh.seek(first)
            blob = fh.read(last - first)
        ends = self._offsets[start + base + 1 : stop + base + 1] - first
        starts = self._offsets[start + base : stop + base] - first
        return [blob[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]

    def search(self, query: str) -> Iterator[int]:
        """Positions of records whose values contain ``query`` (ASCII case-insensitive),
        and ``TICK`` after each chunk scanned (a caller's chance to stop for now)."""
        needle = json.dumps(query, ensure_ascii=False)[1:-1].encode().lower()
        if not needle:
            return
        base = 1 if self.skip_header else 0
        n = self._n
        if n <= base:
            return
        with open(self.path, "rb") as fh:
            line = base
            while line < n:
                start = int(self._offsets[line])
                # whole lines of about CHUNK bytes
                stop_line = int(np.searchsorted(self._offsets[: n + 1], start + CHUNK, "right")) - 1
                stop_line = min(max(line + 1, stop_line), n)
                end = int(self._offsets[stop_line])
                fh.seek(start)
                blob = fh.read(end - start).lower()
                hit = blob.find(needle)
                last_line = -1
                while hit >= 0:
                    pos = int(np.searchsorted(self._offsets[: n + 1], start + hit, "right")) - 1
                    if pos != last_line:
                        last_line = pos
                        a, b = self._span(pos)
                        if matches(_parse(blob[a - start : b - start]), query):
                            yield pos - base
                        hit = blob.find(needle, b - start)
                    else:
                        hit = blob.find(needle, hit + 1)
                line = stop_line
                yield TICK


def _parse(raw: bytes) -> Any:
    try:
        return _loads(raw) if raw.strip() else None
    except ValueError:
        return None


@dataclass
class _Group:
    part: Path
    index: int  # row group within the part
    rows: int
    json_cols: frozenset[str]


class ParquetIndex(_Lookup):
    """Row groups of a parquet store's parts, then its write-ahead log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal = JsonlIndex(path / "wal.jsonl", skip_header=True)
        self._groups: list[_Group] = []
        self._starts: list[int] = []
        self._parts_seen: tuple[tuple[str, int, int], ...] = ()
        self._parts_rows = 0
        self._cache: dict[tuple[Path, int], Any] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._parts_rows + len(self.wal)

    def refresh(self) -> int:
        import pyarrow.parquet as pq

        with self._lock:
            parts = sorted(self.path.glob("part-*.parquet")) if self.path.is_dir() else []
            seen = tuple((p.name, (st := p.stat()).st_ino, st.st_size) for p in parts)
            if seen != self._parts_seen:
                self._groups, self._starts, total = [], [], 0
                for part in parts:
                    meta = pq.ParquetFile(part).metadata
                    raw = (meta.metadata or {}).get(b"fms_dgt.json_columns", b"[]")
                    json_cols = frozenset(json.loads(raw))
                    for g in range(meta.num_row_groups):
                        rows = meta.row_group(g).num_rows
                        self._groups.append(_Group(part, g, rows, json_cols))
                        self._starts.append(total)
                        total += rows
                self._parts_seen, self._parts_rows = seen, total
                self._cache.clear()
            self.wal.refresh()
            if self._wal_compacted():
                self.wal._reset(None)
            return len(self)

    def _wal_compacted(self) -> bool:
        """A log whose part already exists (a crash between the two) holds no new records."""
        if self.wal._n == 0:
            return False
        a, b = self.wal._span(0)
        with open(self.wal.path, "rb") as fh:
            fh.seek(a)
            header = _parse(fh.read(b - a))
        if isinstance(header, dict) and "__wal_part__" in header:
            return (self.path / f"part-{int(header['__wal_part__']):05d}.parquet").exists()
        return False

    def _group_table(self, g: int) -> Any:
        """Row group ``g`` as an Arrow table (the last few are kept: neighbouring pages)."""
        import pyarrow.parquet as pq

        group = self._groups[g]
        key = (group.part, group.index)
        if key not in self._cache:
            if len(self._cache) >= 4:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = pq.ParquetFile(group.part).read_row_group(group.index)
        return self._cache[key]

    def _group_slice(self, g: int, offset: int, count: int) -> Any:
        """Rows ``offset`` .. ``offset+count`` of row group ``g``. Near the start of a group
        not yet read, only its first batches are decoded (a store's first page, or a page of
        a group seen for the first time): decoding a whole 50,000-row group costs far more."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        group = self._groups[g]
        if (group.part, group.index) not in self._cache and offset + count <= HEAD_ROWS:
            batches = []
            have = 0
            pf = pq.ParquetFile(group.part)
            for batch in pf.iter_batches(batch_size=1024, row_groups=[group.index]):
                batches.append(batch)
                have += batch.num_rows
                if have >= offset + count:
                    break
            return pa.Table.from_batches(batches, schema=pf.schema_arrow).slice(offset, count)
        return self._group_table(g).slice(offset, count)

    def read(self, start: int, count: int) -> list[tuple[int, Any]]:
        out: list[tuple[int, Any]] = []
        pos, stop = max(0, start), min(len(self), start + count)
        while pos < stop and pos < self._parts_rows:
            g = bisect_right(self._starts, pos) - 1
            group = self._groups[g]
            offset = pos - self._starts[g]
            rows = self._group_slice(g, offset, stop - pos).to_pylist()
            for row in rows:
                for col in group.json_cols:
                    if row.get(col) is not None:
                        row[col] = json.loads(row[col])
            out.extend((pos + i, r) for i, r in enumerate(rows))
            pos += len(rows)
        if pos < stop:
            out.extend(
                (self._parts_rows + i, r) for i, r in self.wal.read(pos - self._parts_rows, stop - pos)
            )
        return out

    def search(self, query: str) -> Iterator[int]:
        needle = query.lower()
        for g in range(len(self._groups)):
            table = self._group_table(g)
            rows = np.zeros(table.num_rows, dtype=bool)
            for column in table.columns:
                for leaf, parents in _string_leaves(column.combine_chunks()):
                    rows[parents[_match(leaf, needle)]] = True
            # string leaves are values, never keys, except in columns stored as JSON text
            verify = bool(self._groups[g].json_cols)
            for i in np.flatnonzero(rows):
                pos = self._starts[g] + int(i)
                if not verify or matches(self.read(pos, 1)[0][1], query):
                    yield pos
            yield TICK
        for pos in self.wal.search(query):
            yield TICK if pos == TICK else self._parts_rows + pos


def _match(leaf: Any, query: str) -> np.ndarray:
    """Which values of ``leaf`` contain ``query`` (given lower-cased)."""
    import pyarrow.compute as pc

    # lower-casing first (ASCII, like the jsonl search) lets Arrow use a plain substring
    # search; its ignore_case option goes through a regex engine and is several times slower
    hit = pc.match_substring(pc.ascii_lower(leaf), query)
    return np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _string_leaves(array: Any) -> Iterator[tuple[Any, np.ndarray]]:
    """(string array, row of each of its values) for every string leaf of ``array``: struct
    fields and list items are followed, so chat messages are searched too."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = np.arange(len(array))
    stack = [(array, rows)]
    while stack:
        arr, parents = stack.pop()
        t = arr.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            yield arr, parents
        elif pa.types.is_struct(t):
            for i in range(t.num_fields):
                stack.append((arr.field(i), parents))
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            idx = pc.list_parent_indices(arr).to_numpy()
            stack.append((pc.list_flatten(arr), parents[idx]))


StoreIndex = JsonlIndex | ParquetIndex


class IndexCache:
    """One index per store file of the output folder, kept for the viewer's lifetime."""

    def __init__(self) -> None:
        self._indexes: dict[Path, StoreIndex] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> StoreIndex:
        """The up-to-date index of the jsonl file or parquet folder ``path``."""
        with self._lock:
            index = self._indexes.get(path)
            if index is None:
                index = ParquetIndex(path) if path.suffix == ".parquet" else JsonlIndex(path)
                self._indexes[path] = index
        index.refresh()
        return index
