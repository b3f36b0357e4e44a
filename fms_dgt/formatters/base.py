"""Formatters turn final records into a training format (``formatted_data``).

A record that has no place in the format (an extractive answer that is not in its context)
is not silently dropped: ``format`` raises ``FormatRejected`` with the reason, and the
finishing pass writes the record to the task's rejected store (stage ``formatting``, the
formatter's name as the block), where the report and the export's card count it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

RejectHook = Callable[[dict[str, Any], str], None]


class FormatRejected(Exception):
    """Raised by ``Formatter.format`` for a record the format cannot hold; ``reason`` says
    why (its part before the first colon groups it in counts)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Formatter:
    """Maps one final record (a dict) to one formatted record, or None to leave it out."""

    # the fine-tuning task the format is for ("text-generation", "summarization",
    # "extractive-question-answering"), which the export writes into training_config.json;
    # None: the format has no training config of its own
    training_task: str | None = None
    # where rejected records go: the finishing pass sets it to write them to the rejected
    # store; None leaves them out silently
    on_reject: RejectHook | None = None

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
        """Formatted ``records``; a record whose ``format`` raises ``FormatRejected`` is
        left out and passed to ``on_reject`` with the reason. A subclass that overrides this
        to pace or batch records keeps the rejections by calling ``super().format_all``."""
        for record in records:
            try:
                out = self.format(record)
            except FormatRejected as exc:
                if self.on_reject is not None:
                    self.on_reject(record, exc.reason)
                continue
            if out is not None:
                yield out
