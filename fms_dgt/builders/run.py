"""What every run of a task shares: its parts, turning builder output into records, and
offering each record to the filter chain and the ledger.

A builder declares its kind (``DataBuilder.KIND``: ``generation`` or ``transformation``)
and the runtime picks the run class registered for that kind (``RUNS``), so a new kind of
run is a new subclass here, not another ``isinstance`` branch in the runtime.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from fms_dgt.blocks.chain import FilterChain
from fms_dgt.builders.base import DataBuilder
from fms_dgt.builders.declarative import Rejection
from fms_dgt.builders.finishing import Finisher
from fms_dgt.datapoint import DataPoint
from fms_dgt.ledger import Ledger
from fms_dgt.progress import Progress
from fms_dgt.state import TaskState
from fms_dgt.task import Task

CHECKPOINT_SECONDS = 2.0


@dataclass
class RunParts:
    """Everything a run works with, built by the runtime for one task."""

    task: Task
    builder: DataBuilder
    ledger: Ledger
    chain: FilterChain
    state: TaskState
    finisher: Finisher
    progress: Progress
    executor: ThreadPoolExecutor


class TaskRun:
    """Base of the generation and transformation runs."""

    KIND: ClassVar[str] = ""

    def __init__(self, parts: RunParts) -> None:
        self.parts = parts
        self.task = parts.task
        self.builder = parts.builder
        self.ledger = parts.ledger
        self.chain = parts.chain
        self.state = parts.state
        self.finisher = parts.finisher
        self.progress = parts.progress
        self.executor = parts.executor
        self.rc = parts.task.runner_config
        parts.task.ledger = parts.ledger
        self._last_checkpoint = time.monotonic()
        # called after each state checkpoint (the runtime refreshes task_results with it, so
        # a run killed without warning still leaves its requests and tokens counted)
        self.on_checkpoint: Callable[[], object] | None = None

    async def run(self) -> str:
        """Drive the task to its end; returns the final status (``complete``)."""
        raise NotImplementedError

    @property
    def target(self) -> int | None:
        """How many records the task aims at, where it has a number (for task_results)."""
        return None

    def extends(self) -> bool:
        """Whether a task that completed earlier has more to do now (a higher target, new
        input rows): then the run continues it instead of reporting it complete."""
        return False

    def admit(self, record: Any, call: int, stage: str = "generation") -> DataPoint | None:
        """A builder's output as a record; None for a ``Rejection`` (recorded with its raw
        text, as a filtered record is) or an output that is no record (a builder failure)."""
        if isinstance(record, Rejection):
            self.ledger.reject({"raw": record.raw}, record.block, record.reason, stage)
            return None
        try:
            return self.as_output(record)
        except (TypeError, ValueError) as exc:
            self.ledger.builder_failed(call, exc)
            return None

    def as_output(self, record: Any) -> DataPoint:
        """A builder's output as the task's output record (dicts are instantiated)."""
        if isinstance(record, DataPoint):
            record.task_name = record.task_name or self.task.task_name
            return record
        if isinstance(record, dict):
            return self.task.instantiate_output_example(**record)
        raise TypeError(f"builder returned {type(record).__name__}; expected DataPoint records")

    async def offer(self, record: DataPoint, stage: str = "generation") -> bool:
        """Filter ``record``; if every filter keeps it, it is learned by the stateful filters
        and appended to ``data``. Returns whether it was accepted."""
        verdict = await self.chain.verdict(record, self.ledger)
        if verdict is not None:
            self.ledger.reject(record, verdict[0], verdict[1], stage)
            return False
        self.chain.accept(record)
        self.ledger.record_accepted(record)
        return True

    def checkpoint(self, force: bool = False) -> None:
        """Save the state that cannot be derived from the stores (every few seconds)."""
        now = time.monotonic()
        if force or now - self._last_checkpoint >= CHECKPOINT_SECONDS:
            self.save_state()
            self._last_checkpoint = now
            if self.on_checkpoint is not None:
                self.on_checkpoint()

    def save_state(self) -> None:
        self.state.save(self.task.task_dir)


RUNS: dict[str, type[TaskRun]] = {}


def register_run(cls: type[TaskRun]) -> type[TaskRun]:
    RUNS[cls.KIND] = cls
    return cls


def run_kinds() -> dict[str, type[TaskRun]]:
    """Every kind of run (importing the built-in ones registers them)."""
    from fms_dgt.builders import generation, transformation  # noqa: F401

    return RUNS


def run_for(parts: RunParts) -> TaskRun:
    """The run of the kind the task's builder declares (checked when the task loads)."""
    return run_kinds()[parts.builder.KIND](parts)
