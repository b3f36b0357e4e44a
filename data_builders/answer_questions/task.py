"""Records of the ``answer_questions`` transformation builder."""

from __future__ import annotations

from dataclasses import dataclass

from fms_dgt.datapoint import DataPoint
from fms_dgt.task import TransformationTask


@dataclass(kw_only=True)
class Question(DataPoint):
    question: str


@dataclass(kw_only=True)
class AnsweredQuestion(DataPoint):
    question: str
    answer: str


class AnswerQuestionsTask(TransformationTask):
    """Adds an answer to every input question."""

    INPUT_DATA_TYPE = Question
    OUTPUT_DATA_TYPE = AnsweredQuestion
