"""The question/answer record and JSON schema the test builders share."""

from __future__ import annotations

from dataclasses import dataclass

from fms_dgt.datapoint import DataPoint

SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}


@dataclass(kw_only=True)
class Pair(DataPoint):
    question: str
    answer: str
