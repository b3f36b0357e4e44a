"""The safety refusal formatter: a refusal record as a training example."""

from __future__ import annotations

from typing import Any

from fms_dgt.formatters.base import Formatter
from fms_dgt.registry import register_formatter

FIELDS = ("instruction", "response", "metadata")


@register_formatter("safety_refusal", "formatters/safety/refusal")
class SafetyRefusalFormatter(Formatter):
    """``{instruction, response, metadata}`` of each record (``safety_refusal``'s records, or
    any with those fields): the bookkeeping fields (ids, lineage) left out. IBM fms-dgt's
    name for it, ``formatters/safety/refusal``, works too."""

    def fields_read(self) -> dict[str, set[str]]:
        return {"type": set(FIELDS)}

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "instruction": record.get("instruction"),
            "response": record.get("response"),
            "metadata": dict(record.get("metadata") or {}),
        }
