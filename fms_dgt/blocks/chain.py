"""The filter chain: decides whether a record is accepted, nothing else.

Each filter sees each record as it arrives. Filters that await (LLM judges, which override
``acheck``) run first, then the synchronous ones, so the dedup check and the acceptance
that follows happen with no await in between: two concurrent calls can never both pass
dedup with the same text. Once a record passed every filter, each learns it (``accept``).
Counting and writing are the ledger's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.engines.base import ResultSink, use_sink


class FilterChain:
    """The task's filters, in order."""

    def __init__(self, filters: list[FilterBlock]) -> None:
        self.filters = list(filters)
        self.async_filters = [f for f in self.filters if type(f).acheck is not FilterBlock.acheck]
        self.sync_filters = [f for f in self.filters if f not in self.async_filters]

    async def verdict(self, record: Any, sink: ResultSink | None = None) -> tuple[str, str] | None:
        """``(block name, reason)`` of the first filter that rejects ``record``, or None.
        A filter that raises rejects the record (visibly) instead of stopping the run.
        ``sink`` receives the results of requests the filters make (a judge's tokens are
        the task's)."""
        for block in self.async_filters:
            try:
                with use_sink(sink):
                    reason = await block.acheck(record)
            except Exception as exc:
                reason = f"block error: {type(exc).__name__}: {exc}"
            if reason is not None:
                return block.name, reason
        for block in self.sync_filters:
            try:
                reason = block.check(record)
            except Exception as exc:
                reason = f"block error: {type(exc).__name__}: {exc}"
            if reason is not None:
                return block.name, reason
        return None

    def accept(self, record: Any) -> None:
        """``record`` was accepted: stateful filters (dedup indexes) learn it."""
        for block in self.filters:
            block.accept(record)

    def prime(self, records: Iterable[Any]) -> None:
        """Records that count as accepted before the run (seeds)."""
        seeds = list(records)
        for block in self.filters:
            block.prime(seeds)
