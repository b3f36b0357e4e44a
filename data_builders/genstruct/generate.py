"""The ``genstruct`` builder: from a document's title and content (one chunk of the task's
documents per call), a user message that the document answers and the assistant's reply."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, Field

from fms_dgt import register_data_builder
from fms_dgt.sources.documents import Chunk
from fms_dgt.sources.grounded import DocumentPromptBuilder

from .task import GenstructTask

_SOURCE = (Path(__file__).parent / "prompts" / "exchange.j2").read_text()
_TEMPLATE = jinja2.Template(_SOURCE)


def _upto(n: int, word: str) -> str:
    """Up to ``n`` more ``word``s, spelled out as nested optional groups (xgrammar cannot
    compile bounded repeats like ``{0,20}``)."""
    out = ""
    for _ in range(n):
        out = f"(?:{word}{out})?"
    return out


# The patterns steer constrained decoding toward real turns: a 135M model otherwise writes
# user names, copies labels, or rambles until max_tokens cuts the JSON off. The user writes
# one or two sentences, the last of 4 to 30 words ending in "?" or "."; the assistant one to
# four sentences of up to 40 words, the first of 3 words or more. Inside a sentence "." only
# between digits ("27.3"); no ":" (no "User:" labels), quotes, backslashes or newlines.
_CHAR = r'(?:[^ "\\?.!:\n]|[.][0-9])'
_WORD = f"[ ]{_CHAR}*"
_SENTENCE = f"[A-Z0-9]{_CHAR}*{_upto(39, _WORD)}[.!?]"
USER = f"^(?:{_SENTENCE} )?[A-Z0-9]{_CHAR}*{_WORD * 3}{_upto(26, _WORD)}[?.]$"
_FIRST = f"[A-Z0-9]{_CHAR}*{_WORD * 2}{_upto(37, _WORD)}[.!]"
ASSISTANT = f"^{_FIRST}(?: {_SENTENCE}(?: {_SENTENCE}(?: {_SENTENCE})?)?)?$"


class Exchange(BaseModel):
    """What the model writes: the user's message and the assistant's reply (asked for as
    "question" and "answer", which small models follow more reliably than "user" and
    "assistant": those they fill with user names)."""

    question: str = Field(pattern=USER)
    answer: str = Field(pattern=ASSISTANT)


@register_data_builder("genstruct")
class GenstructBuilder(DocumentPromptBuilder):
    TASK_TYPE = GenstructTask
    OUTPUT = Exchange
    SYSTEM = "You write realistic conversations between a curious user and a knowledgeable assistant."

    def prompt_hash(self) -> str:
        return hashlib.sha1(f"{self.SYSTEM}\n{_SOURCE}".encode()).hexdigest()[:12]

    def prompt(self, chunk: Chunk, examples: Sequence[Any], samples: dict[str, Any]) -> str:
        return _TEMPLATE.render(title=chunk.title, content=chunk.text, examples=examples)

    def parse(self, answer: Any, chunk: Chunk, examples: Sequence[Any], samples: dict[str, Any]) -> Any:
        return {
            "title": chunk.title,
            "content": chunk.text,
            "user": answer.question.strip(),
            "assistant": answer.answer.strip(),
        }
