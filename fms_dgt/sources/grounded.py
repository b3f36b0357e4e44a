"""Generation grounded in documents: a task that owns a ``documents`` source, and a
declarative builder whose every call is about one chunk of it.

::

    class Grounded(DocumentPromptBuilder):
        TASK_TYPE = MyDocumentsTask          # a DocumentsTask subclass
        OUTPUT = QA

        def prompt(self, chunk, examples, samples):
            return f"Passage ({chunk.title}):\\n{chunk.text}\\nAsk and answer one question as JSON."

        def parse(self, answer, chunk, examples, samples):
            return {**answer.model_dump(), "context": chunk.text}

Call ``i`` is grounded in ``task.chunk_for(i)``: the same chunk for the same seed and call
index (see ``DocumentSource.pick``). Each record's lineage keeps ``document``: the chunk's
file, title, record, index and character offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fms_dgt.builders.base import GenerationDataBuilder
from fms_dgt.builders.declarative import _Declarative
from fms_dgt.datapoint import DataPoint
from fms_dgt.sources.documents import Chunk, DocumentsConfig, load_documents
from fms_dgt.task import GenerationTask


class DocumentsTask(GenerationTask):
    """A generation task grounded in ``documents`` (a task.yaml key: see
    ``fms_dgt.sources.documents``). The documents are read, checked and chunked when the
    task is built, so ``--validate`` reports a missing or empty document. Seed examples are
    optional: they only show the model the style wanted."""

    def __init__(self, *, documents: DocumentsConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.documents_config = documents
        self.documents = load_documents(documents, self.base_dir, self.yaml_doc)

    def chunk_for(self, call_index: int) -> Chunk:
        """The chunk builder call ``call_index`` is grounded in."""
        return self.documents.pick(call_index, self.runner_config.seed)

    def load_seed_examples(self) -> list[DataPoint]:
        inline, store = self._seed_configs
        if not inline and store is None:
            self.seed_examples = []
            return []
        return super().load_seed_examples()


class DocumentPromptBuilder(_Declarative, GenerationDataBuilder):
    """A generation builder written as ``prompt(chunk, examples, samples)`` and, optionally,
    ``parse(answer, chunk, examples, samples)``; its ``TASK_TYPE`` is a ``DocumentsTask``.
    Everything else is the declarative layer's (see ``fms_dgt.builders.declarative``)."""

    task: DocumentsTask

    def prompt(
        self, chunk: Chunk, examples: Sequence[Any], samples: dict[str, Any]
    ) -> str | list[dict[str, Any]]:
        raise NotImplementedError(f"{type(self).__name__} must define prompt(chunk, examples, samples)")

    def parse(self, answer: Any, chunk: Chunk, examples: Sequence[Any], samples: dict[str, Any]) -> Any:
        """Default: the structured answer (or the text as ``text``) as one record."""
        return answer if self.OUTPUT is not None else {"text": answer}

    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        chunk = self.task.chunk_for(request_idx)
        samples = self.task.draw_samples(request_idx)
        where = chunk.lineage(self.task.base_dir)
        result = await self.ask(
            self.prompt(chunk, seed_data, samples), {"request_idx": request_idx, "document": where}
        )
        if not result.ok:
            return []  # recorded as a failed request by the engine
        extra: dict[str, Any] = {"document": where, **({"samples": samples} if samples else {})}
        out: list[Any] = []
        for answer, raw in zip(self.answers(result), result.texts):
            out += self.records(self.parse(answer, chunk, seed_data, samples), result, raw, **extra)
        return out
