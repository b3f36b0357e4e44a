"""End-of-epoch work: postprocessing, ``final_data`` and ``formatted_data``.

Each output is written with an atomic replace and the state is saved only after it, so an
interrupted pass is simply redone on resume, and ``final_data`` is only ever written from
postprocessed records (never overwritten by raw ones).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

from fms_dgt.blocks.base import FilterPostprocessor, Postprocessor
from fms_dgt.datapoint import as_dict
from fms_dgt.formatters.base import Formatter
from fms_dgt.ledger import TaskLedger
from fms_dgt.state import TaskState
from fms_dgt.task import GenerationTask, Task

log = logging.getLogger("fms_dgt.run")


class Finisher:
    """Runs a task's postprocessors and formatter against its datastores."""

    def __init__(
        self,
        task: Task,
        ledger: TaskLedger,
        state: TaskState,
        postprocessors: list[Postprocessor],
        formatter: Formatter | None,
    ) -> None:
        self.task = task
        self.ledger = ledger
        self.state = state
        self.postprocessors = postprocessors
        self.formatter = formatter

    def postprocess(self, raw_count: int, target: int | None) -> int:
        """Postprocess every accepted record; write ``final_data`` (the first ``target``
        kept records, or all of them); return how many records were kept."""
        seeds = [as_dict(s) for s in getattr(self.task, "seed_examples", [])]
        previous_upto = self.state.postprocessed_upto
        source = self.task.datastore("data")
        stream: Iterator[dict[str, Any]] = source.load_data()
        kept = raw_count
        for step, pp in enumerate(self.postprocessors, 1):
            out = self.task.datastore(f"postproc_data_{step}")
            if isinstance(pp, FilterPostprocessor):
                pp.rejected.clear()
            kept = out.replace(pp.process(stream, seeds))
            if isinstance(pp, FilterPostprocessor):
                self._record_rejections(pp, previous_upto)
            log.info("%s: postprocessor %s kept %d records", self.task.task_name, pp.name, kept)
            stream = out.load_data()
        final = self.task.datastore("final_data")
        limited = itertools.islice(stream, target) if target is not None else stream
        final_count = final.replace(limited)
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
        for record, reason in pp.rejected:
            if new_ids is None or record.get("id") in new_ids:
                self.ledger.reject(record, pp.name, reason, stage="postprocessing")
        pp.rejected.clear()

    def format(self) -> int:
        """Write ``formatted_data`` if the task asks for it; marks the task complete."""
        n = 0
        if self.formatter is not None and self.task.runner_config.save_formatted_output:
            store = self.task.datastore("formatted_data")
            n = store.replace(self.formatter.format_all(self.task.datastore("final_data").load_data()))
            log.info("%s: wrote %d formatted records", self.task.task_name, n)
        self.state.formatted = True
        self.state.status = "complete"
        self.state.save(self.task.task_dir)
        return n


def generation_target(task: Task) -> int | None:
    return task.runner_config.num_outputs_to_generate if isinstance(task, GenerationTask) else None
