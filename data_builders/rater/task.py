"""Task and record types of the ``rater`` builder: the difficulty of question/answer pairs."""

from __future__ import annotations

from dataclasses import dataclass, field

from fms_dgt import DataPoint, TransformationTask

DIFFICULTIES = ("very easy", "easy", "medium", "hard", "very hard")


@dataclass(kw_only=True)
class QAPair(DataPoint):
    """An input row: a question and its answer."""

    question: str
    answer: str


@dataclass(kw_only=True)
class RatedPair(DataPoint):
    """The pair with its rating: ``ratings = {"knowledge": <what answering takes>,
    "difficulty": <one of DIFFICULTIES>}`` (the layout of IBM fms-dgt's qa_rater records)."""

    question: str
    answer: str
    ratings: dict[str, str] = field(default_factory=dict)
    model_name: str | None = None


class RaterTask(TransformationTask):
    """No keys of its own: the input rows need ``question`` and ``answer`` (map other
    column names with ``data: {columns: {question: <column>, answer: <column>}}``)."""

    INPUT_DATA_TYPE = QAPair
    OUTPUT_DATA_TYPE = RatedPair
