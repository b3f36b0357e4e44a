"""``bench_copy``: a transformation that calls no model, so a 1M-row input measures only
the framework's own loop (reading, chunking, filtering, writing, the final sort)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fms_dgt import DataPoint, TransformationDataBuilder, TransformationTask, register_data_builder


@dataclass(kw_only=True)
class Row(DataPoint):
    text: str


@dataclass(kw_only=True)
class Copied(DataPoint):
    text: str
    length: int


class CopyTask(TransformationTask):
    INPUT_DATA_TYPE = Row
    OUTPUT_DATA_TYPE = Copied


@register_data_builder("bench_copy")
class CopyBuilder(TransformationDataBuilder):
    TASK_TYPE = CopyTask

    async def __call__(self, request_idx: int, rows: Sequence[Any]) -> list[Any]:
        return [self.task.instantiate_output_example(text=r.text, length=len(r.text)) for r in rows]
