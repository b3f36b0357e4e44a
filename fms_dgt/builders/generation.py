"""The generation loop: keep builder calls in flight until the task is complete.

Per epoch: schedule calls while ``task.is_complete()`` is false, filter and append each
returned record as its call finishes, then run the postprocessors over everything accepted
and write ``final_data``. If postprocessing dropped records below the target, the next epoch
generates more. All decisions that a crash could interrupt are re-derived from the files
plus the atomically written state on the next run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fms_dgt.builders.base import DataBuilder
from fms_dgt.builders.calls import CallPool, call_builder
from fms_dgt.builders.finishing import Finisher
from fms_dgt.datapoint import DataPoint
from fms_dgt.errors import StalledError
from fms_dgt.ledger import TaskLedger
from fms_dgt.progress import Progress
from fms_dgt.state import TaskState
from fms_dgt.task import GenerationTask

log = logging.getLogger("fms_dgt.run")
CHECKPOINT_SECONDS = 2.0


OUTAGE_PAUSE_SECONDS = 0.5


class OutageWatch:
    """Tells "the server is down" from "the builder makes nothing acceptable".

    A builder call that returns nothing because every request it made failed on transient
    errors (5xx, 429, timeouts, dropped connections), after the engine's own retries, says
    nothing about the task: counting it toward ``max_stalled_attempts`` would end an
    hours-long run over a one-minute outage. Such calls are waited out instead, for up to
    ``max_outage_seconds`` without a single successful request; then the task stops as
    stalled, naming the last error."""

    def __init__(self, ledger: TaskLedger, limit: float, task_name: str) -> None:
        self.ledger = ledger
        self.limit = limit
        self.task_name = task_name
        self.since: float | None = None
        self._ok = ledger.engine_ok
        self._transient = ledger.engine_transient_failures

    def failing(self) -> bool:
        """True while the server looks down: requests failed transiently since the last
        success and none succeeded since (several calls can end on one failure burst)."""
        ok, transient = self.ledger.engine_ok, self.ledger.engine_transient_failures
        succeeded, failed = ok > self._ok, transient > self._transient
        self._ok, self._transient = ok, transient
        if succeeded:
            self.since = None
            return False
        if not failed and self.since is None:
            return False
        now = time.monotonic()
        if self.since is None:
            self.since = now
            log.warning(
                "%s: LLM requests are failing (%s); waiting", self.task_name, self.ledger.last_engine_error
            )
        elif now - self.since > self.limit:
            raise StalledError(
                f"{self.task_name}: no LLM request succeeded for {now - self.since:.0f}s "
                f"(max_outage_seconds={self.limit:g}); last error: {self.ledger.last_engine_error}. "
                "Run the same command again once the server is back"
            )
        return True

    def clear(self) -> None:
        if self.since is not None:
            log.info("%s: LLM requests succeed again", self.task_name)
        self.since = None


class GenerationRun:
    """Drives one GenerationTask to completion (or to a stall)."""

    def __init__(
        self,
        task: GenerationTask,
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
        self.rc = task.runner_config
        self._last_checkpoint = time.monotonic()
        # called after each state checkpoint (the runtime refreshes task_results with it, so
        # a run killed without warning still leaves its requests and tokens counted)
        self.on_checkpoint: Callable[[], None] | None = None

    def restore(self) -> int:
        """Rebuild in-memory state from disk; returns the number of raw records found."""
        seeds = self.task.seed_examples
        raw = 0
        for f in self.ledger.filters:
            f.prime(seeds)
        for record in self.ledger.data.load_data():
            raw += 1
            dp = self.task.instantiate_output_example(**record)
            for f in self.ledger.filters:
                f.accept(dp)
            self.task.remember(dp)
            # the counter is checkpointed every few seconds; never reuse an index after a crash
            idx = dp.lineage.get("request_idx")
            if isinstance(idx, int) and idx >= self.state.next_request_idx:
                self.state.next_request_idx = idx + 1
        if self.state.rng_state is not None:
            self.task.rng.setstate(self.state.rng_state)
        fresh = raw - self.state.postprocessed_upto
        self.task.accepted_count = (
            (self.state.postprocessed_kept + fresh) if self.state.postprocessed_upto else raw
        )
        self.ledger.accepted = raw
        return raw

    async def run(self) -> str:
        raw = self.restore()
        if raw:
            log.info("%s: resuming with %d accepted records", self.task.task_name, raw)
        target = self.rc.num_outputs_to_generate
        self.progress.start(
            self.task.task_name,
            total=target,
            initial=min(self.task.accepted_count, target),
            ledger=self.ledger,
        )
        while True:
            if not self.task.is_complete():
                self.state.status = "generating"
                await self._generate()
            if self.state.postprocessed_upto != self.ledger.accepted or self.state.status != "postprocessed":
                kept = await self.finisher.run(
                    self.executor, self.finisher.postprocess, self.ledger.accepted, target
                )
                self.task.accepted_count = kept
                self.progress.set(self.task.task_name, min(kept, target))
            if self.task.is_complete():
                break
            self.state.epoch += 1
            if self.state.epoch >= self.rc.max_epochs:
                raise StalledError(
                    f"{self.task.task_name}: postprocessing keeps dropping records below the target "
                    f"after {self.state.epoch} epochs ({self.task.accepted_count}/{target})"
                )
            log.info(
                "%s: %d/%d records after postprocessing; generating more (epoch %d)",
                self.task.task_name,
                self.task.accepted_count,
                target,
                self.state.epoch,
            )
        await self.finisher.run(self.executor, self.finisher.format)
        return "complete"

    async def _generate(self) -> None:
        pool = CallPool(self.rc.max_concurrent_calls)
        stall_limit = self.rc.max_stalled_attempts * self.rc.max_concurrent_calls
        calls_without_progress = 0
        outage = OutageWatch(self.ledger, self.rc.max_outage_seconds, self.task.task_name)

        def finished(outcome: tuple[int, int]) -> None:
            nonlocal calls_without_progress
            accepted, _ = outcome
            if accepted:
                calls_without_progress = 0
                outage.clear()
            elif not outage.failing():  # a server outage is waited out, not counted as a stall
                calls_without_progress += 1

        try:
            while True:
                while pool.has_room and not self.task.is_complete() and calls_without_progress < stall_limit:
                    idx = self.state.next_request_idx
                    self.state.next_request_idx += 1
                    pool.submit(self._one_call(idx, self.task.sample_examples()))
                if not pool.inflight:
                    break
                await pool.next_done(finished)
                self._checkpoint()
                if outage.since is not None:
                    await asyncio.sleep(OUTAGE_PAUSE_SECONDS)  # don't hammer a server that is down
                if self.task.is_complete():
                    break
        finally:
            await pool.cancel_all()
            self.ledger.sync()
            self._checkpoint(force=True)
        if not self.task.is_complete():
            raise StalledError(
                f"{self.task.task_name}: no record accepted in {calls_without_progress} consecutive builder calls "
                f"({self.task.accepted_count}/{self.rc.num_outputs_to_generate} so far); see rejected and failed "
                f"records in {self.task.task_dir}"
            )

    async def _one_call(self, idx: int, examples: list[DataPoint]) -> tuple[int, int]:
        outputs = await call_builder(self.builder, self.ledger, self.executor, idx, examples)
        if outputs is None:
            return 0, 0
        accepted = 0
        icl_ids = [e.id for e in examples]
        for record in outputs:
            try:
                record = self._as_output(record)
            except (TypeError, ValueError) as exc:
                self.ledger.builder_failed(idx, exc)
                continue
            lineage = record.lineage
            lineage.setdefault("builder", self.task.data_builder)
            lineage["request_idx"] = idx
            lineage.setdefault("icl_ids", icl_ids)
            if await self.ledger.offer(record):
                accepted += 1
                self.task.accepted_count += 1
                self.task.remember(record)
                self.progress.advance(self.task.task_name, 1, self.ledger)
        return accepted, len(outputs)

    def _as_output(self, record: Any) -> DataPoint:
        if isinstance(record, DataPoint):
            record.task_name = record.task_name or self.task.task_name
            return record
        if isinstance(record, dict):
            return self.task.instantiate_output_example(**record)
        raise TypeError(f"builder returned {type(record).__name__}; expected DataPoint records")

    def _checkpoint(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_checkpoint >= CHECKPOINT_SECONDS:
            self.state.rng_state = self.task.rng.getstate()
            self.state.save(self.task.task_dir)
            self._last_checkpoint = now
            if self.on_checkpoint is not None:
                self.on_checkpoint()
