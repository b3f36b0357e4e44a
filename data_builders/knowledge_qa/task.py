"""Task and record types of the ``knowledge_qa`` builder: question/answer pairs grounded in
chunks of documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fms_dgt.datapoint import DataPoint
from fms_dgt.sources.grounded import DocumentsTask


@dataclass(kw_only=True)
class KnowledgeExample(DataPoint):
    """A seed: a question and answer in the style wanted (about any passage). ``options``
    (multiple-choice only) lists the choices, the answer among them."""

    question: str
    answer: str
    options: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class KnowledgeQA(DataPoint):
    """A question answered by ``context`` (a chunk of the document titled ``title``)."""

    domain: str | None
    question_style: str
    question: str
    answer: str
    options: list[str]  # MCQ: the four choices, ``answer`` among them; FRQ: empty
    title: str
    context: str


class KnowledgeQATask(DocumentsTask):
    """Question/answer pairs about the task's ``documents``.

    Args:
        domain: the subject the documents belong to ("astronomy"), named in the prompt and
            kept on every record; None: no subject is named.
        question_style: ``FRQ`` (free response: a question and its answer) or ``MCQ``
            (multiple choice: a question, four options, and the correct one as the answer).
    """

    INPUT_DATA_TYPE = KnowledgeExample
    OUTPUT_DATA_TYPE = KnowledgeQA

    def __init__(
        self,
        *,
        domain: str | None = None,
        question_style: Literal["FRQ", "MCQ"] = "FRQ",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if domain is not None and not domain.strip():
            raise ValueError("domain is empty: name the documents' subject, or leave domain out")
        self.domain = domain.strip() if domain else None
        self.question_style = question_style
