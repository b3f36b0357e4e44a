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
import math

from fms_dgt.budget import BudgetExhausted
from fms_dgt.builders.calls import CallPool, call_builder
from fms_dgt.builders.health import EngineHealth
from fms_dgt.builders.run import TaskRun, register_run
from fms_dgt.datapoint import DataPoint
from fms_dgt.errors import StalledError
from fms_dgt.task import GenerationTask

log = logging.getLogger("fms_dgt.run")
OUTAGE_PAUSE_SECONDS = 0.5
# calls kept in flight near the end of a run, relative to what the records still needed
# would take at the acceptance rate seen so far (a target of 5 should not send 30 requests)
CALL_HEADROOM = 1.5


@register_run
class GenerationRun(TaskRun):
    """Drives one GenerationTask to completion (or to a stall)."""

    KIND = "generation"
    task: GenerationTask

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._finished_calls = 0
        self._accepted_this_run = 0

    @property
    def target(self) -> int:
        return self.rc.num_outputs_to_generate

    def extends(self) -> bool:
        if self.target <= self.state.final_count:
            return False
        log.info(
            "%s: extending from %d to %d records", self.task.task_name, self.state.final_count, self.target
        )
        return True

    def restore(self) -> int:
        """Rebuild in-memory state from disk; returns the number of raw records found."""
        self.chain.prime(self.task.seed_examples)
        raw = 0
        for record in self.ledger.data.load_data():
            raw += 1
            dp = self.task.instantiate_output_example(**record)
            self.chain.accept(dp)
            self.task.remember(dp)
            # the counter is checkpointed every few seconds; never reuse an index after a crash
            idx = dp.lineage.get("request_idx")
            if isinstance(idx, int) and idx >= self.state.next_request_idx:
                self.state.next_request_idx = idx + 1
        if self.state.rng_state is not None:
            self.task.rng.setstate(self.state.rng_state)
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
            initial=min(self.ledger.kept, target),
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
                self.progress.set(self.task.task_name, min(kept, target))
            if self.task.is_complete():
                break
            self.state.epoch += 1
            if self.state.epoch >= self.rc.max_epochs:
                raise StalledError(
                    f"{self.task.task_name}: postprocessing keeps dropping records below the target "
                    f"after {self.state.epoch} epochs ({self.ledger.kept}/{target})"
                )
            log.info(
                "%s: %d/%d records after postprocessing; generating more (epoch %d)",
                self.task.task_name,
                self.ledger.kept,
                target,
                self.state.epoch,
            )
        await self.finisher.run(self.executor, self.finisher.format)
        return "complete"

    def wanted_calls(self) -> int:
        """Calls worth having in flight: all of ``max_concurrent_calls`` while many records
        are still needed; near the end, about what the remaining records take at the
        records-per-call rate seen so far, with headroom (one record per call until calls
        have finished)."""
        remaining = self.rc.num_outputs_to_generate - self.ledger.kept
        if remaining <= 0:  # an is_complete override decides; keep going at full width
            return self.rc.max_concurrent_calls
        per_call = (self._accepted_this_run + 1) / (self._finished_calls + 1)
        need = math.ceil(remaining / max(per_call, 1e-3) * CALL_HEADROOM) + 1
        return max(1, min(self.rc.max_concurrent_calls, need))

    async def _generate(self) -> None:
        pool = CallPool(self.rc.max_concurrent_calls)
        stall_limit = self.rc.max_stalled_attempts * self.rc.max_concurrent_calls
        calls_without_progress = 0
        health = EngineHealth(
            self.ledger, self.rc.max_outage_seconds, self.task.task_name, self.rc.max_concurrent_calls
        )

        def finished(accepted: int) -> None:
            nonlocal calls_without_progress
            self._finished_calls += 1
            self._accepted_this_run += accepted
            if accepted:
                calls_without_progress = 0
                health.clear()
            elif not health.failing():  # a server outage is waited out, not counted as a stall
                calls_without_progress += 1

        try:
            while True:
                while (
                    pool.has_room
                    and len(pool.inflight) < self.wanted_calls()
                    and not self.task.is_complete()
                    and calls_without_progress < stall_limit
                    and self.ledger.over_budget() is None
                ):
                    idx = self.state.next_request_idx
                    self.state.next_request_idx += 1
                    pool.submit(self._one_call(idx, self.task.sample_examples()))
                if not pool.inflight:
                    break
                await pool.next_done(finished)
                health.check_fatal()
                self.checkpoint()
                if health.since is not None:
                    await asyncio.sleep(OUTAGE_PAUSE_SECONDS)  # don't hammer a server that is down
                if self.task.is_complete():
                    break
        finally:
            await pool.cancel_all()
            self.ledger.sync()
            self.checkpoint(force=True)
        stop = self.ledger.over_budget()
        if stop is not None and not self.task.is_complete():
            raise stop
        if not self.task.is_complete():
            raise StalledError(
                f"{self.task.task_name}: no record accepted in {calls_without_progress} consecutive builder calls "
                f"({self.ledger.kept}/{self.rc.num_outputs_to_generate} so far); see rejected and failed "
                f"records in {self.task.task_dir}"
            )

    async def _one_call(self, idx: int, examples: list[DataPoint]) -> int:
        try:
            outputs = await call_builder(self.builder, self.ledger, self.executor, idx, examples)
        except BudgetExhausted:
            return 0  # stopped before its next request: the run ends after the calls in flight
        if outputs is None:
            return 0
        accepted = 0
        icl_ids = [e.id for e in examples]
        for output in outputs:
            record = self.admit(output, idx)
            if record is None:
                continue
            lineage = record.lineage
            lineage.setdefault("builder", self.task.data_builder)
            lineage["request_idx"] = idx
            lineage.setdefault("icl_ids", icl_ids)
            if await self.offer(record):
                accepted += 1
                self.task.remember(record)
                self.progress.advance(self.task.task_name, 1, self.ledger)
        return accepted

    def save_state(self) -> None:
        self.state.rng_state = self.task.rng.getstate()
        super().save_state()
