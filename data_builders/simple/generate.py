"""The ``simple`` builder: show the model a few examples, ask for one more pair."""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2

from fms_dgt.builders.base import GenerationDataBuilder
from fms_dgt.engines import Constraint, Engine, LMRequest
from fms_dgt.registry import register_data_builder

from .task import InstructData, SimpleTask

_TEMPLATE_SOURCE = (Path(__file__).parent / "prompts" / "generate.j2").read_text()
_TEMPLATE = jinja2.Template(_TEMPLATE_SOURCE)
TEMPLATE_HASH = hashlib.sha1(_TEMPLATE_SOURCE.encode()).hexdigest()[:12]


def _words(min_words: int, char: str) -> str:
    """A run of at least ``min_words`` space-separated words of ``char`` starting with a capital
    letter or a digit (``char`` must not match a space, so a string splits one way only:
    Python's regex engine checks every record against this and must not backtrack
    exponentially on a near miss). Spelled out word by word: xgrammar fails to compile
    bounded repeats like ``{15,300}``."""
    return f"[A-Z0-9]{char}*{f'[ ]{char}*' * (min_words - 1)}(?:[ ]{char}*)*"


# Inside a question: no quotes, backslashes or newlines (nothing to escape), no "?" before
# the end, and ":" only between digits ("10:30": small models otherwise copy the prompt's
# "Question:" label into the question). Inside an answer sentence: no sentence end, but "."
# between digits ("3.5", "0.62"). Each alternative starts with a different character, so a
# text still matches one way only.
_Q_CHAR = r'(?:[^ "\\?:\n]|:[0-9])'
_A_CHAR = r'(?:[^ "\\?.!\n]|[.][0-9])'
_LONG, _SHORT = f"{_words(3, _A_CHAR)}[.!]", f"{_words(1, _A_CHAR)}[.!]"  # sentences
# The patterns steer constrained decoding toward what the builder's filters accept: a
# question of five words or more ending at its first "?", and an answer of one or two
# sentences, one of them three words or more ("No. Both are caused by heat."). So a small
# model neither echoes headings nor rambles until max_tokens cuts the JSON off. Lengths live
# in the patterns because xgrammar rejects a pattern together with minLength on one string.
PAIR_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "pattern": f"^{_words(5, _Q_CHAR)}\\?$"},
        "answer": {"type": "string", "pattern": f"^({_LONG}( {_SHORT})?|{_SHORT} {_LONG})$"},
    },
    "required": ["question", "answer"],
}


@register_data_builder("simple")
class SimpleInstructDataBuilder(GenerationDataBuilder):
    """One request per call (``n`` samples if the engine's sampling sets it); each sample
    that parses becomes a candidate record. Filters and dedup are applied by the runtime."""

    TASK_TYPE = SimpleTask
    llm1: Engine

    async def __call__(self, request_idx: int, seed_data: list[InstructData]) -> list[InstructData]:
        prompt = _TEMPLATE.render(task_description=self.task.task_description, examples=seed_data)
        request = LMRequest(
            messages=[{"role": "user", "content": prompt}],
            constraint=Constraint(json_schema=PAIR_SCHEMA),
            metadata={"request_idx": request_idx},
        )
        result = await self.llm1.agenerate(request)
        if not result.ok:
            return []  # already recorded as a failed request by the engine
        records = []
        for obj in result.parsed or []:
            records.append(
                self.task.instantiate_output_example(
                    question=obj["question"].strip(),
                    answer=obj["answer"].strip(),
                    lineage={
                        "model": result.model,
                        "engine": self.llm1.name,
                        "prompt_template": TEMPLATE_HASH,
                        "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
                    },
                )
            )
        return records
