"""The ``knowledge_qa`` builder: one question/answer pair per call, grounded in one chunk of
the task's documents; the ``answer_supported`` filter rejects answers the chunk does not
support. ``question_style: MCQ`` asks for four options instead, the answer being the
correct one."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from pydantic import BaseModel, Field

from fms_dgt import Rejection, register_data_builder
from fms_dgt.sources.documents import Chunk
from fms_dgt.sources.grounded import DocumentPromptBuilder

from .task import KnowledgeQATask

_PROMPTS = Path(__file__).parent / "prompts"
_SOURCES = {style: (_PROMPTS / f"{style.lower()}.j2").read_text() for style in ("FRQ", "MCQ")}
_TEMPLATES = {style: jinja2.Template(source) for style, source in _SOURCES.items()}
_LETTERS = "ABCD"


def _upto(n: int, word: str) -> str:
    """Up to ``n`` more ``word``s, spelled out as nested optional groups (xgrammar cannot
    compile bounded repeats like ``{0,20}``)."""
    out = ""
    for _ in range(n):
        out = f"(?:{word}{out})?"
    return out


# The patterns steer constrained decoding toward usable text: a 135M model otherwise starts
# with the passage's title and rambles on in labels and digits until max_tokens cuts the JSON
# off. A question opens with a question word, has 4 to 25 words and ends at its first "?";
# an answer is one or two sentences of up to 40 words each. Inside a sentence "." only
# between digits ("27.3"), so a sentence ends at its first "." or "!". No quotes,
# backslashes, newlines, and in a question no ":", "#" or brackets (prompt labels).
_Q_WORD = r'[ ][^ "\\?:#{}\[\]\n]+'
_A_CHAR = r'(?:[^ "\\?.!\n]|[.][0-9])'
_OPENERS = (
    "What|Why|How|When|Where|Which|Who|Whose|Do|Does|Did|Is|Are|Was|Were|Can|Could|Would|"
    "Should|Will|Has|Have|In|At|On|During|From|For|By|According"
)
QUESTION = f"^(?:{_OPENERS}){_Q_WORD * 3}{_upto(21, _Q_WORD)}\\?$"
_SENTENCE = f"[A-Z0-9]{_A_CHAR}*{_upto(39, f'[ ]{_A_CHAR}*')}[.!]"
ANSWER = f"^{_SENTENCE}(?: {_SENTENCE})?$"


class FreeResponse(BaseModel):
    question: str = Field(pattern=QUESTION)
    answer: str = Field(pattern=ANSWER)


class MultipleChoice(BaseModel):
    question: str = Field(pattern=QUESTION)
    options: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=4, max_length=4)
    correct: Literal["A", "B", "C", "D"]


@register_data_builder("knowledge_qa")
class KnowledgeQABuilder(DocumentPromptBuilder):
    TASK_TYPE = KnowledgeQATask
    task: KnowledgeQATask
    SYSTEM = "You write accurate questions about reference passages. Every answer is stated in its passage."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.OUTPUT = MultipleChoice if self.task.question_style == "MCQ" else FreeResponse

    def prompt_hash(self) -> str:
        source = f"{self.SYSTEM}\n{_SOURCES[self.task.question_style]}"
        return hashlib.sha1(source.encode()).hexdigest()[:12]

    def prompt(self, chunk: Chunk, examples: Sequence[Any], samples: dict[str, Any]) -> str:
        template = _TEMPLATES[self.task.question_style]
        return template.render(
            domain=self.task.domain, title=chunk.title, context=chunk.text, examples=examples
        )

    def parse(self, answer: Any, chunk: Chunk, examples: Sequence[Any], samples: dict[str, Any]) -> Any:
        record = {
            "domain": self.task.domain,
            "question_style": self.task.question_style,
            "question": answer.question.strip(),
            "title": chunk.title,
            "context": chunk.text,
        }
        if isinstance(answer, FreeResponse):
            return {**record, "answer": answer.answer.strip(), "options": []}
        options = [" ".join(o.split()) for o in answer.options]
        if len({o.lower() for o in options}) < len(options):
            return Rejection(f"the options repeat: {options}")
        return {**record, "answer": options[_LETTERS.index(answer.correct)], "options": options}
