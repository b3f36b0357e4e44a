"""Sorting a stream of records that may not fit in memory (an external merge sort).

A transformation appends records in the order its chunks finish; its ``final_data`` is
written in input order. Records are read in runs of ``run_size``, each run sorted and
spilled to a temporary jsonl file, then the runs are merged lazily: memory holds one run
while spilling and one record per run while merging, whatever the number of records.
Equal keys keep their original order (the sort and the merge are stable).
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fms_dgt.datastores.files import encode_lines, iter_jsonl

Record = dict[str, Any]


def sorted_records(
    records: Iterable[Record],
    key: Callable[[Record], Any],
    *,
    run_size: int = 10_000,
    tmp_dir: Path | None = None,
) -> Iterator[Record]:
    """``records`` sorted by ``key``, streaming."""
    it = iter(records)
    first: list[Record] = []
    for record in it:
        first.append(record)
        if len(first) >= run_size:
            break
    else:  # everything fit in one run: no files
        yield from sorted(first, key=key)
        return
    with tempfile.TemporaryDirectory(prefix=".sort-", dir=tmp_dir) as folder:
        runs = [_spill(sorted(first, key=key), Path(folder), 0)]
        first.clear()
        batch: list[Record] = []
        for record in it:
            batch.append(record)
            if len(batch) >= run_size:
                runs.append(_spill(sorted(batch, key=key), Path(folder), len(runs)))
                batch = []
        if batch:
            runs.append(_spill(sorted(batch, key=key), Path(folder), len(runs)))
        yield from heapq.merge(*(iter_jsonl(run) for run in runs), key=key)


def _spill(records: list[Record], folder: Path, n: int) -> Path:
    path = folder / f"run-{n:05d}.jsonl"
    with open(path, "wb") as fh:
        for i in range(0, len(records), 1000):
            fh.write(encode_lines(records[i : i + 1000]))
    return path
