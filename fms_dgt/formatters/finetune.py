"""Fine-tuning formats for the tasks single-turn tuning tools train on:

- ``input_output``: ``{"input", "output"}`` per record, for text generation or
  summarization (``task`` says which; the export writes it into ``training_config.json``);
- ``extractive_qa``: ``{"context", "question", "answer", "answer_start"}``, SQuAD-style,
  where the answer is a span of the context. A record whose answer does not occur verbatim
  in its context cannot train an extractive model, so it is rejected with that reason (the
  rejected store, stage ``formatting``) instead of being written with a made-up offset.

Each part is a Jinja template over the record's fields, so any builder's records fit.
"""

from __future__ import annotations

from typing import Any, Literal

from fms_dgt.formatters.base import FormatRejected, Formatter
from fms_dgt.formatters.templates import _compile, _render, _variables
from fms_dgt.registry import register_formatter


class _TemplatedFormatter(Formatter):
    """Renders one Jinja template per output key."""

    def __init__(self, templates: dict[str, str], name: str | None) -> None:
        super().__init__(name)
        self._sources = dict(templates)
        self.templates = {k: _compile(v, k) for k, v in templates.items()}

    def fields_read(self) -> dict[str, set[str]]:
        return {k: _variables(v) for k, v in self._sources.items()}

    def render(self, record: dict[str, Any]) -> dict[str, str]:
        return {k: _render(t, record, k) for k, t in self.templates.items()}


@register_formatter("input_output")
class InputOutputFormatter(_TemplatedFormatter):
    """``{"input": ..., "output": ...}``: a prompt and the text a model should write."""

    def __init__(
        self,
        input: str = "{{ question }}",
        output: str = "{{ answer }}",
        task: Literal["text-generation", "summarization"] = "text-generation",
        skip_empty: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__({"input": input, "output": output}, name)
        self.training_task = task
        self.skip_empty = skip_empty

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        row = self.render(record)
        if self.skip_empty:
            for key in ("input", "output"):
                if not row[key].strip():
                    raise FormatRejected(f"empty {key}: the template rendered no text")
        return row


@register_formatter("extractive_qa", "squad")
class ExtractiveQAFormatter(_TemplatedFormatter):
    """``{"context", "question", "answer", "answer_start"}`` with ``answer`` a span of
    ``context`` starting at character ``answer_start`` (its first occurrence).

    The answer is stripped of surrounding whitespace before it is looked up; with
    ``ignore_case: true`` the lookup ignores case and the span written is the context's own
    text (so ``context[answer_start:][:len(answer)] == answer`` always holds)."""

    training_task = "extractive-question-answering"

    def __init__(
        self,
        context: str = "{{ context }}",
        question: str = "{{ question }}",
        answer: str = "{{ answer }}",
        ignore_case: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__({"context": context, "question": question, "answer": answer}, name)
        self.ignore_case = ignore_case

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        row = self.render(record)
        context, answer = row["context"], row["answer"].strip()
        if not answer:
            raise FormatRejected("empty answer")
        if self.ignore_case:
            start = context.casefold().find(answer.casefold())
            # casefold can change lengths (ß -> ss): only trust a span that matches back
            if start >= 0 and context[start : start + len(answer)].casefold() != answer.casefold():
                start = -1
        else:
            start = context.find(answer)
        if start < 0:
            shown = answer if len(answer) <= 60 else answer[:57] + "..."
            raise FormatRejected(f"answer not found verbatim in the context: {shown!r}")
        return {
            "context": context,
            "question": row["question"],
            "answer": context[start : start + len(answer)],
            "answer_start": start,
        }
