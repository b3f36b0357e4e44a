"""Exact dedup over a normalised text hash."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.blocks.dedup.keyset import KeySet

_PUNCT = re.compile(r"[^\w\s]")


def normalise(text: str, *, punctuation: bool = True) -> str:
    """Lower-case, collapse whitespace and (optionally) drop punctuation, so trivially
    different spellings of the same text hash alike."""
    text = text.lower()
    if punctuation:
        text = _PUNCT.sub(" ", text)
    return " ".join(text.split())


class ExactDedup(FilterBlock):
    """Reject a record whose normalised text equals that of a seed or an accepted record.

    Args:
        fields: fields hashed together (default: every string field).
        ignore_punctuation: treat "Why?" and "why" as the same text.
    """

    kind = "exact_dedup"

    def __init__(
        self,
        name: str | None = None,
        fields: list[str] | None = None,
        ignore_punctuation: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, fields=fields, **kwargs)
        self.ignore_punctuation = ignore_punctuation
        # 64-bit hashes in a compact set: ~8 bytes per record, so memory stays flat over long
        # runs; a collision needs ~4e9 records to become likely
        self._seen = KeySet()
        self._last: tuple[Any, int] | None = None  # (record, key) of the last check

    def _key(self, record: Any) -> int:
        last = self._last
        if last is not None and last[0] is record:  # accept() right after check(): hash once
            return last[1]
        text = normalise(self.text_of(record), punctuation=self.ignore_punctuation)
        key = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)
        self._last = (record, key)
        return key

    def check(self, record: Any) -> str | None:
        return "exact duplicate" if self._key(record) in self._seen else None

    def accept(self, record: Any) -> None:
        self._seen.add(self._key(record))
        self._last = None

    def reset(self) -> None:
        self._seen.clear()
        self._last = None
