"""The transformation loop: one pass over the task's input rows, in chunks, many chunks in
flight at once.

Exactly once, across crashes and extensions: a chunk is a run of consecutive input rows
(``start``, ``rows``). Its accepted records carry the chunk number in their lineage, and
the chunk counts as done only once a line for it is in the ``progress`` store (written
after its records). On resume, records of chunks that never got that line are cut from
``data``, and every input row that no done chunk covers is processed: rows of interrupted
chunks, and rows added to the input since the last run (so a finished task whose input
grew continues with only the new rows).

A chunk whose requests failed transiently (the server went away) is not written at all:
it is sent again once the server answers, so no row is half done. ``final_data`` keeps
the input order (``lineage.row``, then the order of a chunk's outputs), whatever order the
chunks finished in.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

from fms_dgt.budget import BudgetExhausted
from fms_dgt.builders.calls import CallPool, CallSink, call_builder
from fms_dgt.builders.health import EngineHealth
from fms_dgt.builders.run import TaskRun, register_run
from fms_dgt.datapoint import DataPoint
from fms_dgt.task import TransformationTask

log = logging.getLogger("fms_dgt.run")
RETRY_PAUSE_SECONDS = 0.5


def input_order(record: dict[str, Any]) -> tuple[int, int]:
    """Sort key that puts a transformation's records back in input order."""
    lineage = record.get("lineage") or {}
    return int(lineage.get("row") or 0), int(lineage.get("seq") or 0)


@register_run
class TransformationRun(TaskRun):
    KIND = "transformation"
    task: TransformationTask

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.progress_store = self.task.stores.progress
        self.finisher.order = input_order  # final_data in input order
        self.done: dict[int, tuple[int, int]] = {}  # chunk -> (start row, rows)
        self.next_chunk = 0
        self._lost = 0
        # start row -> chunk number of chunks seen before: a redone chunk keeps its number
        self.known_starts: dict[int, int] = {}

    def extends(self) -> bool:
        self.load_done()
        if not self.has_pending_rows():
            return False
        log.info(
            "%s: the input has rows no earlier run processed; processing only those", self.task.task_name
        )
        return True

    def load_done(self) -> Counter[int | None]:
        """Which chunks are done: those with a progress line whose record count ``data``
        still holds. A SIGKILL can only leave records of unfinished chunks (their progress
        line comes after them); a power loss can also lose records of a chunk whose line
        survived, since the two files reach the disk independently. Either way the chunk's
        leftover records are dropped and its rows are redone."""
        size = self.rc.transform_batch_size
        expected: dict[int, tuple[int, int, int]] = {}
        for line in self.progress_store.load_data():  # the last line of a redone chunk wins
            chunk = int(line["chunk"])
            start = int(line.get("start", chunk * size))  # lines written before rows were recorded
            expected[chunk] = (start, int(line.get("rows", size)), int(line.get("accepted", 0)))
        data = self.ledger.data
        have: Counter[int | None] = Counter()
        self.known_starts = {s: c for c, (s, _, _) in expected.items()}
        for record in data.load_data():
            of = _chunk_of(record)
            have[of] += 1
            row = (record.get("lineage") or {}).get("row")
            if of is not None and isinstance(row, int) and not isinstance(row, bool):
                self.known_starts.setdefault(row, of)
        self.done = {c: (s, n) for c, (s, n, k) in expected.items() if have.get(c, 0) == k}
        self.next_chunk = max([*expected, *(c for c in have if c is not None), -1]) + 1
        self._lost = len(expected) - len(self.done)
        return have

    def restore(self) -> None:
        """Settle what an interrupted run left (see ``load_done``), then rebuild the dedup
        state and counts from ``data``."""
        have = self.load_done()
        data = self.ledger.data
        lost = self._lost
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
            self.chain.accept(self.task.instantiate_output_example(**record))
        self.ledger.accepted = count

    def pending_chunks(self) -> Iterator[tuple[int, int, list[DataPoint]]]:
        """``(chunk, start row, rows)`` for the input rows no done chunk covers, in input
        order; a chunk never spans a row that is already done."""
        covered = sorted(self.done.values())
        size = self.rc.transform_batch_size
        spans = iter(covered)
        span = next(spans, None)
        batch: list[DataPoint] = []
        start = 0
        for row, record in enumerate(itertools.islice(self.task.iter_input(), self.rc.max_input_rows)):
            while span is not None and row >= span[0] + span[1]:
                span = next(spans, None)
            if span is not None and span[0] <= row:
                if batch:
                    yield self._chunk_at(start), start, batch
                    batch = []
                continue
            if not batch:
                start = row
            batch.append(record)
            if len(batch) >= size:
                yield self._chunk_at(start), start, batch
                batch = []
        if batch:
            yield self._chunk_at(start), start, batch

    def _chunk_at(self, start: int) -> int:
        """The number of the chunk starting at row ``start``: its old one if it was started
        before (a redone chunk), else a new one."""
        chunk = self.known_starts.get(start)
        if chunk is None or chunk in self.done:
            chunk = self.next_chunk
            self.next_chunk += 1
        return chunk

    def has_pending_rows(self) -> bool:
        """Whether the input holds rows no done chunk covers (reads the input once)."""
        return next(self.pending_chunks(), None) is not None

    async def run(self) -> str:
        self.restore()
        self.progress.start(
            self.task.task_name, total=None, initial=len(self.done), unit="chunks", ledger=self.ledger
        )
        if self.state.status not in ("postprocessed", "complete"):
            self.state.status = "generating"
            await self._pass()
            self.task.pass_complete = True
            await self.finisher.run(self.executor, self.finisher.postprocess, self.ledger.accepted, None)
        self.task.pass_complete = True
        if self.state.status != "complete":
            await self.finisher.run(self.executor, self.finisher.format)
        return "complete"

    async def _pass(self) -> None:
        pool = CallPool(self.rc.max_concurrent_calls)
        health = EngineHealth(
            self.ledger, self.rc.max_outage_seconds, self.task.task_name, self.rc.max_concurrent_calls
        )
        retry: list[tuple[int, int, list[DataPoint]]] = []

        def finished(outcome: tuple[int, int, list[DataPoint]] | None) -> None:
            if outcome is None:
                health.clear()
            else:  # its requests failed transiently: send it again once the server answers
                retry.append(outcome)
                health.failing()

        chunks = self.pending_chunks()
        try:
            for item in itertools.chain(chunks, _drain(retry)):
                while not pool.has_room:
                    await pool.next_done(finished)
                    health.check_fatal()
                    self.checkpoint()
                if self.task.is_complete() or self.ledger.over_budget():  # an override may end it early
                    break
                if health.since is not None:
                    await asyncio.sleep(RETRY_PAUSE_SECONDS)
                pool.submit(self._one_chunk(*item))
            while pool.inflight or retry:
                await pool.next_done(finished)
                health.check_fatal()
                while (
                    retry and pool.has_room and not self.task.is_complete() and not self.ledger.over_budget()
                ):
                    await asyncio.sleep(RETRY_PAUSE_SECONDS)
                    pool.submit(self._one_chunk(*retry.pop(0)))
                if self.task.is_complete() and not pool.inflight:
                    break
        finally:
            await pool.cancel_all()
            self.ledger.sync()
            self.progress_store.sync()
        stop = self.ledger.over_budget()
        if stop is not None and not self.task.is_complete():
            raise stop  # the chunks not done stay pending: a raised budget continues with them

    async def _one_chunk(
        self, idx: int, start: int, rows: list[DataPoint]
    ) -> tuple[int, int, list[DataPoint]] | None:
        """Process one chunk; returns it when it must be sent again (transient failures)."""
        sink = CallSink(self.ledger)
        try:
            outputs = await call_builder(self.builder, self.ledger, self.executor, idx, rows, sink)
        except BudgetExhausted:
            return None  # not recorded as done: the chunk is processed when the run continues
        if sink.transient_failures and outputs is not None:
            return idx, start, rows
        produced = 0
        for seq, output in enumerate(outputs or []):
            record = self.admit(output, idx)
            if record is None:
                continue
            lineage = record.lineage
            lineage.setdefault("builder", self.task.data_builder)
            lineage.update(chunk=idx, row=start, seq=seq)
            if await self.offer(record):
                produced += 1
        self.progress_store.save_data(
            [
                {
                    "chunk": idx,
                    "start": start,
                    "rows": len(rows),
                    "accepted": produced,
                    "failed_call": outputs is None,
                }
            ]
        )
        self.done[idx] = (start, len(rows))
        self.progress.advance(self.task.task_name, 1, self.ledger)
        return None


def _drain(queue: list[Any]) -> Iterator[Any]:
    while queue:
        yield queue.pop(0)


def _chunk_of(record: dict[str, Any]) -> int | None:
    lineage = record.get("lineage") or {}
    chunk = lineage.get("chunk")
    return int(chunk) if chunk is not None else None
