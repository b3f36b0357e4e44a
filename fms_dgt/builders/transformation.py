"""The transformation loop: one pass over the task's input rows, in chunks, many chunks in
flight at once.

Exactly-once on resume: each chunk's accepted records are tagged with the chunk number in
their lineage, and a chunk counts as done only once a line for it is in the
``transform_progress`` store (written after its records). On resume, records of chunks that
never got that line are cut from ``data`` and the chunk is redone.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fms_dgt.builders.base import DataBuilder
from fms_dgt.builders.calls import CallPool, call_builder
from fms_dgt.builders.finishing import Finisher
from fms_dgt.datapoint import DataPoint
from fms_dgt.ledger import TaskLedger
from fms_dgt.progress import Progress
from fms_dgt.state import TaskState
from fms_dgt.task import TransformationTask

log = logging.getLogger("fms_dgt.run")


class TransformationRun:
    def __init__(
        self,
        task: TransformationTask,
        builder: DataBuilder,
        ledger: TaskLedger,
        state: TaskState,
        finisher: Finisher,
        progress: Progress,
        executor: ThreadPoolExecutor,
    ) -> None:
        self.task = task
        self.builder = builder
        self.ledger = ledger
        self.state = state
        self.finisher = finisher
        self.progress = progress
        self.executor = executor
        self.progress_store = task.datastore("transform_progress", output_data_format="jsonl")
        self.done: set[int] = set()

    def restore(self) -> None:
        """Which chunks are done: those with a progress line whose record count ``data``
        still holds. A SIGKILL can only leave records of unfinished chunks (their progress
        line comes after them); a power loss can also lose records of a chunk whose line
        survived, since the two files reach the disk independently. Either way the chunk's
        leftover records are dropped and the chunk is redone."""
        expected: dict[int, int] = {}
        for line in self.progress_store.load_data():  # the last line of a redone chunk wins
            expected[int(line["chunk"])] = int(line.get("accepted", 0))
        data = self.ledger.data
        have = Counter(_chunk_of(r) for r in data.load_data())
        self.done = {chunk for chunk, n in expected.items() if have.get(chunk, 0) == n}
        lost = len(expected) - len(self.done)
        if lost:
            log.warning(
                "%s: %d finished chunk(s) are missing records on disk (lost writes); redoing them",
                self.task.task_name,
                lost,
            )
        stray = sum(n for chunk, n in have.items() if chunk not in self.done)
        if stray:
            log.warning(
                "%s: dropping %d records of chunks that were interrupted; they will be redone",
                self.task.task_name,
                stray,
            )
            data.replace(r for r in data.load_data() if _chunk_of(r) in self.done)
        count = 0
        for record in data.load_data():
            count += 1
            dp = self.task.instantiate_output_example(**record)
            for f in self.ledger.filters:
                f.accept(dp)
        self.ledger.accepted = count
        self.task.accepted_count = count

    async def run(self) -> str:
        self.restore()
        size = self.task.runner_config.transform_batch_size
        rows = self.task.iter_input()
        chunks = (
            (i, list(batch)) for i, batch in enumerate(iter(lambda: list(itertools.islice(rows, size)), []))
        )
        self.progress.start(
            self.task.task_name, total=None, initial=len(self.done), unit="chunks", ledger=self.ledger
        )
        if self.state.status not in ("postprocessed", "complete"):
            self.state.status = "generating"
            pool = CallPool(self.task.runner_config.max_concurrent_calls)
            try:
                for idx, batch in chunks:
                    if idx in self.done:
                        continue
                    while not pool.has_room:
                        await pool.next_done(lambda _: None)
                    if self.task.is_complete():  # an override may end the pass early
                        break
                    pool.submit(self._one_chunk(idx, batch))
                while pool.inflight:
                    await pool.next_done(lambda _: None)
            finally:
                await pool.cancel_all()
                self.ledger.sync()
                self.progress_store.sync()
            self.task.pass_complete = True
            await self.finisher.run(self.executor, self.finisher.postprocess, self.ledger.accepted, None)
        self.task.pass_complete = True
        if self.state.status != "complete":
            await self.finisher.run(self.executor, self.finisher.format)
        return "complete"

    async def _one_chunk(self, idx: int, rows: list[DataPoint]) -> None:
        outputs = await call_builder(self.builder, self.ledger, self.executor, idx, rows)
        produced = 0
        for record in outputs or []:
            try:
                record = self._as_output(record)
            except (TypeError, ValueError) as exc:
                self.ledger.builder_failed(idx, exc)
                continue
            record.lineage.setdefault("builder", self.task.data_builder)
            record.lineage["chunk"] = idx
            if await self.ledger.offer(record):
                produced += 1
                self.task.accepted_count += 1
        self.progress_store.save_data(
            [{"chunk": idx, "rows": len(rows), "accepted": produced, "failed_call": outputs is None}]
        )
        self.done.add(idx)
        self.progress.advance(self.task.task_name, 1, self.ledger)

    def _as_output(self, record: Any) -> DataPoint:
        if isinstance(record, DataPoint):
            record.task_name = record.task_name or self.task.task_name
            return record
        if isinstance(record, dict):
            return self.task.instantiate_output_example(**record)
        raise TypeError(f"builder returned {type(record).__name__}; expected DataPoint records")


def _chunk_of(record: dict[str, Any]) -> int | None:
    lineage = record.get("lineage") or {}
    chunk = lineage.get("chunk")
    return int(chunk) if chunk is not None else None
