"""Exact dedup over a normalised text hash."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from fms_dgt.blocks.base import FilterBlock

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
        self._seen: set[bytes] = set()

    def _key(self, record: Any) -> bytes:
        text = normalise(self.text_of(record), punctuation=self.ignore_punctuation)
        return hashlib.blake2b(text.encode(), digest_size=12).digest()

    def check(self, record: Any) -> str | None:
        return "exact duplicate" if self._key(record) in self._seen else None

    def accept(self, record: Any) -> None:
        self._seen.add(self._key(record))

    def reset(self) -> None:
        self._seen.clear()
