"""Data builders: the code that turns in-context examples into new records.

A builder is a class registered by name plus a YAML beside its ``generate.py``::

    name: simple
    blocks:                       # engines and filters, each available as self.<name>
      - {name: llm1, type: vllm, sampling: {max_tokens: 256}}
      - {name: len_ok, type: length_filter, min_chars: 20, fields: [answer]}
    postprocessors:               # run over all accepted records at the end of an epoch
      - {name: dedup, type: exact_dedup, fields: [question]}
    metadata: {version: 1}

Every ``FilterBlock`` among the blocks (and the task's ``filters``) is applied by the
runtime to each record the builder returns, as it arrives; the builder only generates.
``__call__`` may be a plain function (run in a worker thread) or ``async def``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Sequence
from typing import Any, ClassVar

from fms_dgt.blocks.base import Block
from fms_dgt.engines.base import Engine
from fms_dgt.task import GenerationTask, Task, TransformationTask


class DataBuilder:
    """Holds the task and the configured blocks; subclasses implement ``__call__``."""

    TASK_TYPE: ClassVar[type[Task]] = Task
    # which run drives it: "generation" (until the target is met) or "transformation" (one
    # pass over the input rows)
    KIND: ClassVar[str] = ""

    def __init__(self, task: Task, blocks: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self.task = task
        self.blocks = blocks
        self.metadata = dict(metadata or {})
        for name, block in blocks.items():
            setattr(self, name, block)

    @property
    def engines(self) -> list[Engine]:
        return [b for b in self.blocks.values() if isinstance(b, Engine)]

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(type(self).__call__)

    def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any] | Awaitable[list[Any]]:
        """One call: records from ``seed_data`` (in-context examples, or a chunk of input
        rows). Plain, or ``async def`` (then it runs on the event loop)."""
        raise NotImplementedError

    def close(self) -> None:
        for block in self.blocks.values():
            if isinstance(block, Block):
                block.close()


class GenerationDataBuilder(DataBuilder):
    """Builds new records from in-context examples (seeds + accepted synthetic records)."""

    TASK_TYPE: ClassVar[type[Task]] = GenerationTask
    KIND: ClassVar[str] = "generation"


class TransformationDataBuilder(DataBuilder):
    """Maps a batch of input rows to output records (zero or more per row)."""

    TASK_TYPE: ClassVar[type[Task]] = TransformationTask
    KIND: ClassVar[str] = "transformation"
