"""Shared helpers for block tests: a tiny record type and a streaming driver that applies a
filter the way the ledger does (check, then accept what passed)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # so ``tests.support`` imports however pytest is invoked
    sys.path.insert(0, str(ROOT))

from fms_dgt.blocks.base import FilterBlock  # noqa: E402
from fms_dgt.datapoint import DataPoint  # noqa: E402


@dataclass(kw_only=True)
class QA(DataPoint):
    question: str
    answer: str = ""


def stream(block: FilterBlock, records: list[Any]) -> tuple[list[Any], list[tuple[Any, str]]]:
    """Apply ``block`` to ``records`` in order; returns (kept, [(rejected, reason)])."""
    kept, rejected = [], []
    for record in records:
        reason = block.check(record)
        if reason is None:
            block.accept(record)
            kept.append(record)
        else:
            rejected.append((record, reason))
    return kept, rejected
