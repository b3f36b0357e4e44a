"""Formatters turn final records into a training format (``formatted_data``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


class Formatter:
    """Maps one final record (a dict) to one formatted record, or None to leave it out."""

    def __init__(self, name: str | None = None, **unused: Any) -> None:
        if unused:
            raise TypeError(f"unexpected formatter arguments: {', '.join(sorted(unused))}")
        self.name = name or type(self).__name__

    def format(self, record: dict[str, Any]) -> dict[str, Any] | None:
        raise NotImplementedError

    def fields_read(self) -> dict[str, set[str]]:
        """Record fields each part of the formatter reads, keyed by its config key
        (``"fields.input"``, ``"user"``...), so a misspelled field is reported when the task
        loads rather than after the whole generation. Default: unknown (nothing checked)."""
        return {}

    def format_all(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            out = self.format(record)
            if out is not None:
                yield out
