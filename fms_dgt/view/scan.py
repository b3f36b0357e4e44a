"""What the charts know of a task folder, kept between calls and brought up to date by reading
only what was appended since.

A viewer asks for a task's charts again and again while the run goes on; reading a million
records each time would take seconds. The stores are append-only while a task runs
(``data``, ``rejected`` and ``failed`` grow by whole lines), so a ``TaskScan`` remembers, per
jsonl store, the file it read and the byte offset of the last whole line, and the next
``update`` reads from there. A line still being written (no newline yet) waits for the next
update. When a store is replaced or shrinks (postprocessing rewrites ``final_data``, a resumed
transformation cuts ``data``, ``--restart`` starts over) or ``final_data`` appears, the scan
starts again from nothing. Parquet stores are read whole again whenever their files change.

What is kept is bounded whatever the number of records: counts per length value, a reservoir
sample of texts, fixed timeline bins, counts per block and reason. ``scan_of`` keeps the scans
of the most recently used task folders (a few), each behind its own lock so a threaded server
can ask for the same task twice at once.
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fms_dgt.ledger import reason_kind
from fms_dgt.metrics.diversity import distinct_n, self_similarity
from fms_dgt.report import read_store, record_text, store_format
from fms_dgt.view.timeline import Timeline

DIVERSITY_SAMPLE = 5000  # texts kept (reservoir) for distinct-n
ROUGE_SAMPLE = 150  # texts compared pairwise by ROUGE-L (11k pairs)
JACCARD_SAMPLE = 600  # texts compared pairwise by MinHash Jaccard
MAX_DISTINCT_LENGTHS = 20000  # lengths counted exactly up to this many distinct values
MAX_SCANS = 8  # task folders whose scans are kept

try:  # orjson parses a million lines in a third of the time (the stores write with it too)
    from orjson import loads
except ImportError:  # pragma: no cover - orjson is optional
    from json import loads  # type: ignore[assignment]


class TextStats:
    """Lengths (counted per value) and a reservoir sample of the texts of one set of records."""

    def __init__(self, seed: int = 0) -> None:
        self.n = 0
        self.lengths: Counter[int] = Counter()
        self.quantum = 1  # lengths are counted in multiples of this (grows past MAX_DISTINCT_LENGTHS)
        self.sample: list[str] = []
        self._rng = random.Random(seed)
        self._diversity: tuple[int, dict[str, float | None]] | None = None

    def add(self, text: str) -> None:
        self.n += 1
        self.lengths[len(text) // self.quantum * self.quantum] += 1
        if len(self.lengths) > MAX_DISTINCT_LENGTHS:
            self.quantum *= 2
            coarse: Counter[int] = Counter()
            for length, count in self.lengths.items():
                coarse[length // self.quantum * self.quantum] += count
            self.lengths = coarse
        if len(self.sample) < DIVERSITY_SAMPLE:
            self.sample.append(text)
        else:
            j = self._rng.randrange(self.n)
            if j < DIVERSITY_SAMPLE:
                self.sample[j] = text

    def diversity(self) -> dict[str, float | None]:
        """Distinct-1/2 and self-similarity of the sample (computed again only when records
        were added since)."""
        if self._diversity is None or self._diversity[0] != self.n:
            texts = self.sample
            figures = {
                "distinct-1": distinct_n(texts, 1) if texts else None,
                "distinct-2": distinct_n(texts, 2) if texts else None,
                "self-similarity ROUGE-L": self_similarity(texts, "rouge_l", max_texts=ROUGE_SAMPLE),
                "self-similarity Jaccard": self_similarity(texts, "jaccard", max_texts=JACCARD_SAMPLE),
            }
            self._diversity = (self.n, figures)
        return self._diversity[1]


class Restart(Exception):
    """A store was replaced or shrank: what was read of the task no longer holds."""


class StoreCursor:
    """Reads one store from where the previous read stopped."""

    def __init__(self, task_dir: Path, store: str) -> None:
        self.task_dir, self.store = task_dir, store
        self.file: tuple[int, int] | None = None  # (device, inode) of the jsonl file read
        self.offset = 0  # bytes of whole lines read
        self.marks = b""  # its first and last bytes read: a file rewritten in place differs there
        self.parquet: tuple[tuple[str, int, int], ...] | None = None  # files, sizes, mtimes read

    def new_rows(self) -> Iterator[dict[str, Any]]:
        """The rows appended since the last call; raises ``Restart`` if the store was
        replaced, shrank or vanished."""
        fmt = store_format(self.task_dir, self.store)
        if fmt == "parquet":
            yield from self._parquet()
            return
        path = self.task_dir / f"{self.store}.jsonl"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if self.file is not None or self.parquet is not None:
                raise Restart(self.store) from None
            return
        ident = (st.st_dev, st.st_ino)
        if self.parquet is not None or (
            self.file is not None and (ident != self.file or st.st_size < self.offset)
        ):
            raise Restart(self.store)
        self.file = ident
        with open(path, "rb") as fh:
            if self.offset and self._marks(fh) != self.marks:
                raise Restart(self.store)
            fh.seek(self.offset)
            for line in fh:
                if not line.endswith(b"\n"):
                    return  # still being written: read at the next update
                self.offset += len(line)
                if line.strip():
                    try:
                        row = loads(line)
                    except ValueError:
                        continue  # a corrupt line is the report's to name, not the charts'
                    if isinstance(row, dict):
                        yield row
            self.marks = self._marks(fh)

    def _marks(self, fh: Any) -> bytes:
        """The first and the last 64 bytes of what was read (up to ``offset``)."""
        fh.seek(0)
        head = fh.read(min(64, self.offset))
        fh.seek(max(0, self.offset - 64))
        return head + fh.read(min(64, self.offset))

    def _parquet(self) -> Iterator[dict[str, Any]]:
        if self.file is not None:
            raise Restart(self.store)
        folder = self.task_dir / f"{self.store}.parquet"
        signature = tuple(
            sorted(
                (p.name, (st := p.stat()).st_size, st.st_mtime_ns) for p in folder.iterdir() if p.is_file()
            )
        )
        if self.parquet is not None:
            if signature == self.parquet:
                return
            raise Restart(self.store)
        self.parquet = signature
        yield from read_store(self.task_dir, self.store)


class TaskScan:
    """Everything the charts draw of one task folder, as of the last ``update``."""

    def __init__(self, task_dir: Path) -> None:
        self.task_dir = task_dir
        self.lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self.kept_store = "final_data" if store_format(self.task_dir, "final_data") else "data"
        self.kept = TextStats()
        self.timeline = Timeline()
        self.by_block: dict[str, Counter[str]] = defaultdict(Counter)
        self.failed: Counter[tuple[str, str]] = Counter()
        self.cursors = {
            s: StoreCursor(self.task_dir, s) for s in ("data", "final_data", "rejected", "failed")
        }

    def update(self) -> None:
        """Read what the stores gained since the last update (everything, the first time or
        after a store was replaced)."""
        if self.kept_store == "data" and store_format(self.task_dir, "final_data"):
            self._clear()  # the task finished: its kept records are final_data's now
        for _ in range(3):
            try:
                self._read()
                return
            except Restart:
                self._clear()
        self._read()  # replaced three times in a row: one more try, errors go up

    def _read(self) -> None:
        for record in self.cursors["data"].new_rows():
            self.timeline.accepted(record)
            if self.kept_store == "data" and not record.get("is_seed"):
                self.kept.add(record_text(record))
        if self.kept_store == "final_data":
            for record in self.cursors["final_data"].new_rows():
                if not record.get("is_seed"):
                    self.kept.add(record_text(record))
        for row in self.cursors["rejected"].new_rows():
            block, kind = str(row.get("block")), reason_kind(str(row.get("reason", "")))
            self.by_block[block][kind] += 1
            self.timeline.rejected(row, kind)
        for row in self.cursors["failed"].new_rows():
            self.failed[(str(row.get("stage")), reason_kind(str(row.get("error") or "unknown")))] += 1


_SCANS: OrderedDict[Path, TaskScan] = OrderedDict()
_SCANS_LOCK = threading.Lock()


def scan_of(task_dir: Path) -> TaskScan:
    """The kept scan of ``task_dir`` (a new one if it is not among the last ``MAX_SCANS``)."""
    key = Path(task_dir).resolve()
    with _SCANS_LOCK:
        scan = _SCANS.get(key)
        if scan is None:
            scan = _SCANS[key] = TaskScan(key)
            while len(_SCANS) > MAX_SCANS:
                _SCANS.popitem(last=False)
        _SCANS.move_to_end(key)
        return scan
