"""Blocks: configured, reusable units a builder holds (filters, dedup, judges, postprocessors).

Two roles:

- ``FilterBlock`` sees each record as it arrives. ``check``/``acheck`` returns a rejection
  reason or None; once a record passed every filter, ``accept`` is called on each so stateful
  filters (dedup indexes) learn it. Splitting check from accept is what makes "dedup against
  everything accepted so far" exact.
- ``Postprocessor`` rewrites the whole accepted stream at the end of an epoch. Any filter can
  serve as one (``FilterPostprocessor``), which gives batch dedup for free.

Keyword arguments of ``__init__`` are what YAML sets; positional arguments are reserved for
the runtime.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from fms_dgt.datapoint import as_dict, get_field
from fms_dgt.errors import MissingDependencyError


def require(module: str, package: str, what: str) -> Any:
    """Import an optional dependency of a block when the block is built (so a missing package
    is a config error before any model call, with the pip command), not on first record."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs the package '{package}' ({exc})",
            hint=f"pip install {package}  (or: pip install 'fms_dgt[quality]')",
        ) from None


class Block:
    """Base of every block. ``name`` is the instance name from the builder YAML."""

    kind: str = "block"

    def __init__(self, name: str | None = None, **unused: Any) -> None:
        if unused:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(unused))}")
        self.name = name or self.kind

    def close(self) -> None:
        """Release resources (models, files). Called once at the end of a run."""


class FilterBlock(Block):
    """A per-record check applied while records stream in.

    Args:
        fields: record fields the check looks at (joined with newlines); None means every
            string field.
    """

    kind = "filter"
    # > 0: batch runs (postprocessing) call ``prefetch`` on chunks of this many records first
    prefetch_size: int = 0

    def __init__(self, name: str | None = None, fields: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.fields = list(fields) if fields else None

    def check(self, record: Any) -> str | None:
        """Return why ``record`` is rejected, or None to keep it."""
        return None

    async def acheck(self, record: Any) -> str | None:
        """Async form; blocks that call an LLM (judges) override this one."""
        return self.check(record)

    def accept(self, record: Any) -> None:
        """``record`` was kept by every filter: update any state (dedup index)."""

    def prefetch(self, records: list[Any]) -> None:
        """Compute per-record features for a batch before the records are checked one by one
        (an embedding model is far faster on a batch than on single texts). Optional: checks
        must work without it, and must still see each record's predecessors accepted."""

    def prime(self, records: Iterable[Any]) -> None:
        """Load records that count as already accepted (seeds, records of a resumed run)."""
        for record in records:
            self.accept(record)

    def reset(self) -> None:
        """Forget all accepted state (used before a postprocessing pass)."""

    def text_of(self, record: Any) -> str:
        """The text this filter examines."""
        if self.fields:
            values = [get_field(record, f) for f in self.fields]
        else:
            data = as_dict(record)
            values = [v for k, v in data.items() if isinstance(v, str) and k not in ("task_name", "id")]
        return "\n".join(str(v) for v in values if v is not None)


class Postprocessor(Block):
    """Transforms the full stream of accepted records at the end of an epoch."""

    kind = "postprocessor"

    def process(
        self, records: Iterable[dict[str, Any]], seeds: Iterable[dict[str, Any]] = ()
    ) -> Iterator[dict[str, Any]]:
        """Yield the records to keep (possibly modified). Must stream: O(1) memory per record
        beyond any index the step needs."""
        yield from records


class FilterPostprocessor(Postprocessor):
    """Runs a ``FilterBlock`` over the whole stream (e.g. batch dedup)."""

    def __init__(self, block: FilterBlock, name: str | None = None) -> None:
        super().__init__(name or block.name)
        self.block = block
        self.rejected: list[tuple[dict[str, Any], str]] = []

    def process(
        self, records: Iterable[dict[str, Any]], seeds: Iterable[dict[str, Any]] = ()
    ) -> Iterator[dict[str, Any]]:
        block = self.block
        block.reset()
        block.prime(seeds)
        size = block.prefetch_size
        if size <= 0:
            for record in records:
                if self._one(record):
                    yield record
            return
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) >= size:
                yield from self._batch(batch)
                batch = []
        yield from self._batch(batch)

    def _batch(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        if batch:
            self.block.prefetch(batch)
        for record in batch:
            if self._one(record):
                yield record

    def _one(self, record: dict[str, Any]) -> bool:
        reason = self.block.check(record)
        if reason is None:
            self.block.accept(record)
            return True
        self.rejected.append((record, reason))
        return False
