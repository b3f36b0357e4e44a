"""``answer_supported``: reject an answer its context does not support, by word overlap.

A cheap, deterministic check for answers grounded in a passage (knowledge QA, reading
comprehension, RAG): most of what an answer says must be in its context. Unlike
``answer_in_context`` (the answer must occur verbatim), a paraphrase passes as long as it is
built from the context's words.

How it scores: the answer's and the context's words (runs of letters and digits, lower-cased)
are compared after dropping common English function words ("the", "of", "is"...) and single
letters, and stripping a plural or verb ending (``orbits``, ``orbited``, ``orbiting`` -> ``orbit``). The
**support** is the share of the answer's distinct content words that occur in the context.

- ``min_support`` (default 0.6): the lowest support accepted. At 0.6 an answer may add a few
  connecting words of its own ("because", "mainly") to a restatement of the passage, but not
  bring in mostly outside material; 1.0 demands every content word from the context; lower
  values suit answers that explain at length. An answer with no content word at all ("Yes.")
  cannot be checked and is rejected.
- ``check_numbers`` (default true): every number in the answer (``1969``, ``27.3``) must also
  be in the context: a wrong number is the commonest hallucination and costs one word only.

``fields`` are the answer fields (default ``[answer]``, joined); ``context_field`` the
record's field holding the passage (default ``context``). Each rejection says why, with the
support found and the words missing from the context.
"""

from __future__ import annotations

import re
from typing import Any

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.datapoint import get_field

_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SUFFIXES = ("ing", "ed", "es", "s")
# function words carry no claim a context could support
_FUNCTION_WORDS = """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would yes you your yours yourself
    yourselves"""
STOPWORDS = frozenset(_FUNCTION_WORDS.split())


def stem(word: str) -> str:
    """``word`` without a plural or verb ending (a light stemmer, enough to match inflections)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> dict[str, str]:
    """The lower-cased words of ``text`` that are not function words or single letters, by
    their stem (each stem with the first word it came from)."""
    out: dict[str, str] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):  # no "s" of "Moon's"
            out.setdefault(stem(word), word)
    return out


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


class AnswerSupported(FilterBlock):
    """Reject records whose answer is not supported by their context (see the module
    docstring for the score and its threshold)."""

    kind = "answer_supported"

    def __init__(
        self,
        name: str | None = None,
        fields: list[str] | None = None,
        context_field: str = "context",
        min_support: float = 0.6,
        check_numbers: bool = True,
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= min_support <= 1.0:
            raise ValueError(f"min_support must be between 0 and 1, got {min_support}")
        super().__init__(name, fields=fields or ["answer"], **kwargs)
        self.context_field = context_field
        self.min_support = min_support
        self.check_numbers = check_numbers

    def check(self, record: Any) -> str | None:
        answer = self.text_of(record)
        context = get_field(record, self.context_field)
        if not isinstance(context, str) or not context.strip():
            return f"the record has no '{self.context_field}' text to check the answer against"
        if self.check_numbers:
            stray = sorted(numbers(answer) - numbers(context))
            if stray:
                return f"the answer has a number its {self.context_field} lacks: {', '.join(stray[:3])}"
        words = content_words(answer)
        if not words:
            return "the answer has no content words to check against its context"
        missing = sorted(words[s] for s in words.keys() - content_words(context).keys())
        support = 1 - len(missing) / len(words)
        if support < self.min_support:
            return (
                f"the answer is not supported by its {self.context_field}: {len(words) - len(missing)} of "
                f"{len(words)} content words occur there ({support:.0%} < min_support {self.min_support:.0%}); "
                f"not there: {', '.join(missing[:6])}"
            )
        return None
