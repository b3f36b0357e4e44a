"""End-of-epoch work: postprocessing, ``final_data`` and ``formatted_data``.

Each output is written with an atomic replace and the state is saved only after it, so an
interrupted pass is simply redone on resume, and ``final_data`` is only ever written from
postprocessed records (never overwritten by raw ones).

These passes run in a worker thread. A thread cannot be cancelled, and the interpreter waits
for it at exit, so Ctrl-C during a long pass would hang until the pass ended (and the pass
would then save its state after the runtime had saved "interrupted"). ``Finisher.run`` sets
a stop flag the record streams check, waits for the thread to stop, then lets the
cancellation through: the half-written output is discarded and the pass redone on resume.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from typing import Any, TypeVar

from fms_dgt.blocks.base import FilterPostprocessor, Postprocessor
from fms_dgt.datapoint import as_dict
from fms_dgt.datastores.roles import FINAL, FORMATTED, SPLIT_NAMES
from fms_dgt.datastores.sorting import sorted_records
from fms_dgt.export.splits import ASSIGNMENT_FILE, assign, load_assignment, record_key, save_assignment
from fms_dgt.formatters.base import Formatter
from fms_dgt.ledger import Ledger
from fms_dgt.state import TaskState
from fms_dgt.task import Task

log = logging.getLogger("fms_dgt.run")
R = TypeVar("R")
STOP_WAIT_SECONDS = 10.0  # how long an interrupted run waits for a pass to notice the stop flag


class PassInterrupted(Exception):
    """Raised inside a postprocessing/formatting pass once the run is being stopped."""


class Finisher:
    """Runs a task's postprocessors and formatter against its datastores."""

    def __init__(
        self,
        task: Task,
        ledger: Ledger,
        state: TaskState,
        postprocessors: list[Postprocessor],
        formatter: Formatter | None,
    ) -> None:
        self.task = task
        self.ledger = ledger
        self.state = state
        self.postprocessors = postprocessors
        self.formatter = formatter
        self.stop = threading.Event()
        self.active: str | None = None  # the pass running now, for "where things stand"
        # a sort key for the accepted records before postprocessing (a transformation puts
        # them back in input order); None keeps the order they were accepted in
        self.order: Callable[[dict[str, Any]], Any] | None = None

    async def run(self, executor: Executor, step: Callable[..., R], *args: Any) -> R:
        """Run ``step`` (``postprocess`` or ``format``) in ``executor``; if this coroutine is
        cancelled (SIGINT/SIGTERM), stop the pass and wait for its thread before re-raising."""
        future = asyncio.get_running_loop().run_in_executor(executor, step, *args)
        self.active = "postprocessing" if step == self.postprocess else "formatting"
        try:
            result = await asyncio.shield(future)
            self.active = None
            return result
        except asyncio.CancelledError:
            self.stop.set()
            try:
                await asyncio.wait_for(future, STOP_WAIT_SECONDS)
            except BaseException:  # PassInterrupted, or the pass's own error: moot now
                pass
            raise

    def _checked(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``records``, raising PassInterrupted as soon as the run is being stopped."""
        stop = self.stop
        for record in records:
            if stop.is_set():
                raise PassInterrupted
            yield record

    def postprocess(self, raw_count: int, target: int | None) -> int:
        """Postprocess every accepted record; write ``final_data`` (the first ``target``
        kept records, or all of them); return how many records were kept."""
        seeds = [as_dict(s) for s in getattr(self.task, "seed_examples", [])]
        previous_upto = self.state.postprocessed_upto
        stores = self.task.stores
        records: Iterable[dict[str, Any]] = self._checked(stores.data.load_data())
        if self.order is not None:
            records = sorted_records(records, self.order, tmp_dir=self.task.task_dir)
        stream: Iterator[dict[str, Any]] = self._checked(records)
        kept = raw_count
        for step, pp in enumerate(self.postprocessors, 1):
            out = stores.postproc(step)
            if isinstance(pp, FilterPostprocessor):
                pp.rejected.clear()
            kept = out.replace(self._checked(pp.process(stream, seeds)))
            if isinstance(pp, FilterPostprocessor):
                self._record_rejections(pp, previous_upto)
            log.info("%s: postprocessor %s kept %d records", self.task.task_name, pp.name, kept)
            stream = self._checked(out.load_data())
        final = stores.final
        limited = itertools.islice(stream, target) if target is not None else stream
        final_count = final.replace(limited)
        if self.stop.is_set():  # the stream may have ended just as the stop came
            raise PassInterrupted
        self.state.postprocessed_upto = raw_count
        self.state.postprocessed_kept = kept
        self.state.final_count = final_count
        self.state.formatted = False
        self.state.status = "postprocessed"
        self.state.save(self.task.task_dir)
        return kept

    def _record_rejections(self, pp: FilterPostprocessor, previous_upto: int) -> None:
        # records before previous_upto were seen (and their rejections recorded) by an earlier
        # epoch; postprocessors keep the first of duplicates, so those verdicts do not change
        if not pp.rejected:
            return
        new_ids = None
        if previous_upto:
            new_ids = {
                r.get("id") for r in itertools.islice(self.ledger.data.load_data(), previous_upto, None)
            }
        # a pass interrupted after writing its rejections but before saving the state is
        # redone from the same previous_upto: rejections already on disk are not repeated
        on_disk = {
            (r.get("record", {}).get("id"), r.get("block"))
            for r in self.ledger.rejected.load_data()
            if r.get("stage") == "postprocessing"
        }
        for record, reason in pp.rejected:
            rid = record.get("id")
            if (new_ids is None or rid in new_ids) and (rid, pp.name) not in on_disk:
                self.ledger.reject(record, pp.name, reason, stage="postprocessing")
        pp.rejected.clear()

    def format(self) -> int:
        """Write ``formatted_data`` if the task asks for it, and the split files if it asks
        for a split; marks the task complete."""
        n = 0
        stores = self.task.stores
        assignment = self._split_final()
        if self.formatter is not None and self.task.runner_config.save_formatted_output:
            labels: list[str] = []  # the split of each formatted record, in order
            n = stores.formatted.replace(self._checked(self._formatted(assignment, labels)))
            log.info("%s: wrote %d formatted records", self.task.task_name, n)
            if assignment is not None:
                for split in SPLIT_NAMES:
                    rows = (r for r, s in zip(stores.formatted.load_data(), labels) if s == split)
                    self._write_split(FORMATTED, split, rows, split in self._split_ratios())
        if self.stop.is_set():
            raise PassInterrupted
        self.state.formatted = True
        self.state.status = "complete"
        self.state.save(self.task.task_dir)
        return n

    def _formatted(self, assignment: dict[str, str] | None, labels: list[str]) -> Iterator[dict[str, Any]]:
        """The formatter's records; a record it rejects goes to the rejected store (once:
        a pass redone on resume or after an extension does not repeat a rejection)."""
        formatter = self.formatter
        assert formatter is not None
        on_disk = {
            (r.get("record", {}).get("id"), r.get("block"))
            for r in self.ledger.rejected.load_data()
            if r.get("stage") == "formatting"
        }

        def rejected(record: dict[str, Any], reason: str) -> None:
            if (record.get("id"), formatter.name) not in on_disk:
                on_disk.add((record.get("id"), formatter.name))
                self.ledger.reject(record, formatter.name, reason, stage="formatting")

        # each output is labelled with the split of the last record the formatter read
        # (exact for formatters that format record by record, as the base class does)
        current = {"split": ""}

        def tracked() -> Iterator[dict[str, Any]]:
            for record in self._checked(self.task.stores.final.load_data()):
                if assignment is not None:
                    current["split"] = assignment.get(record_key(record), "train")
                yield record

        formatter.on_reject = rejected
        try:
            for out in formatter.format_all(tracked()):
                labels.append(current["split"])
                yield out
        finally:
            formatter.on_reject = None

    def _split_final(self) -> dict[str, str] | None:
        """Draw (or keep) the split of the final records and write ``final_data_<split>``;
        the assignment, or None when the task asks for no split."""
        spec = self.task.runner_config.split
        stores, task_dir = self.task.stores, self.task.task_dir
        if spec is None:  # none asked for (any more): no split files that say otherwise
            for base in (FINAL, FORMATTED):
                for split in SPLIT_NAMES:
                    self._write_split(base, split, (), False)
            (task_dir / ASSIGNMENT_FILE).unlink(missing_ok=True)
            return None
        ratios = self._split_ratios()
        keys = [record_key(r) for r in self._checked(stores.final.load_data())]
        previous = load_assignment(task_dir, ratios, spec.seed)
        assignment = assign(keys, ratios, spec.seed, previous)
        for split in SPLIT_NAMES:
            rows = (r for r in stores.final.load_data() if assignment.get(record_key(r)) == split)
            self._write_split(FINAL, split, rows, split in ratios)
        save_assignment(task_dir, ratios, spec.seed, assignment)
        return assignment

    def _split_ratios(self) -> dict[str, float]:
        spec = self.task.runner_config.split
        return {k: v for k, v in spec.ratios().items() if v > 0} if spec is not None else {}

    def _write_split(self, base: str, split: str, rows: Iterable[dict[str, Any]], wanted: bool) -> None:
        store = self.task.stores.split(base, split)
        if wanted:
            store.replace(self._checked(rows))
        elif store.exists():  # a split the configuration no longer has
            store.clear()
