"""Task and record types of the ``knowledge_qa`` builder: question/answer pairs grounded in
chunks of documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fms_dgt.datapoint import DataPoint
from fms_dgt.sources.documents import DocumentsConfig
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


class KnowledgeDatastore(BaseModel):
    """fms-dgt's ``knowledge.datastore_config``: where the document records are."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["default"] = "default"
    data_path: str = Field(min_length=1)
    data_formats: list[Literal["jsonl", "json", "md", "txt", "html", "pdf"]] | None = None
    store_name: str | None = None


class KnowledgeStore(BaseModel):
    """fms-dgt's ``knowledge:`` key: document records in a datastore, the text under
    ``content`` (``fields: {"*": "*"}`` keeps the records as they are)."""

    model_config = ConfigDict(extra="forbid")

    datastore_config: KnowledgeDatastore
    fields: dict[str, str] = Field(default_factory=lambda: {"*": "*"})

    def documents(self, chunk_tokens: int, overlap_tokens: int) -> DocumentsConfig:
        path = self.datastore_config.data_path
        patterns = [path]
        if self.datastore_config.data_formats and path.endswith("**"):
            patterns = [f"{path}/*.{fmt}" for fmt in self.datastore_config.data_formats]
        text = self.fields.get("content", "content") if self.fields != {"*": "*"} else "content"
        return DocumentsConfig(
            path=patterns, text_field=text, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens
        )


class KnowledgeQATask(DocumentsTask):
    """Question/answer pairs about the task's ``documents``.

    Args:
        domain: the subject the documents belong to ("astronomy"), named in the prompt and
            kept on every record; None: no subject is named.
        question_style: ``FRQ`` (free response: a question and its answer) or ``MCQ``
            (multiple choice: a question, four options, and the correct one as the answer).
        documents: the documents (``fms_dgt.sources.documents``); or, as IBM fms-dgt's
            ``instructlab/knowledge`` tasks give them, ``knowledge`` (a datastore of records
            with their text in ``content``) or ``include: {documents: ...}``.
        chunk_size: fms-dgt's chunk length in words: chunks of that many words without
            overlap (our tokens are words); 0 or less: whole documents. Not with
            ``documents.chunk_tokens``.
        num_icl_examples_per_prompt: fms-dgt's name for ``runner_config.seed_batch_size``.
    """

    INPUT_DATA_TYPE = KnowledgeExample
    OUTPUT_DATA_TYPE = KnowledgeQA
    COMPAT_FIELDS: ClassVar[dict[str, str]] = {
        "loop_over": "calls always go round the chunks again, in a new seeded order each round",
        "num_docs_per_iteration": "each call takes one chunk, in a seeded round-robin order",
        "criteria": "answers are checked by the answer_supported filter (support in their chunk); "
        "add an llm_judge block to judge them with a model",
    }

    def __init__(
        self,
        *,
        domain: str | None = None,
        question_style: Literal["FRQ", "MCQ"] = "FRQ",
        documents: DocumentsConfig | None = None,
        knowledge: KnowledgeStore | None = None,
        chunk_size: int | None = None,
        num_icl_examples_per_prompt: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(documents=_documents(documents, knowledge, chunk_size), **kwargs)
        if num_icl_examples_per_prompt is not None:
            if num_icl_examples_per_prompt < 0:
                raise ValueError("num_icl_examples_per_prompt must be 0 or more")
            self.runner_config.seed_batch_size = num_icl_examples_per_prompt
        if domain is not None and not domain.strip():
            raise ValueError("domain is empty: name the documents' subject, or leave domain out")
        self.domain = domain.strip() if domain else None
        self.question_style = question_style


WHOLE = 10**9  # chunk_tokens meaning "no chunking": no document is that long


def _documents(
    documents: DocumentsConfig | None, knowledge: KnowledgeStore | None, chunk_size: int | None
) -> DocumentsConfig:
    """The documents config from ours (``documents``) or fms-dgt's (``knowledge``,
    ``chunk_size``) keys."""
    if documents is not None and knowledge is not None:
        raise ValueError("give documents or knowledge, not both")
    if documents is None and knowledge is None:
        raise ValueError(
            "knowledge_qa needs 'documents' (the questions are grounded in them): "
            "documents: {path: docs/} (a file, a glob or a folder)"
        )
    size = None if chunk_size is None else (chunk_size if chunk_size > 0 else WHOLE)
    if knowledge is not None:
        return knowledge.documents(size or 300, 0 if size else 30)
    assert documents is not None
    if size is None:
        return documents
    if "chunk_tokens" in documents.model_fields_set:
        raise ValueError("give chunk_size or documents.chunk_tokens, not both")
    overlap = documents.overlap_tokens if "overlap_tokens" in documents.model_fields_set else 0
    return documents.model_copy(update={"chunk_tokens": size, "overlap_tokens": min(overlap, size - 1)})
