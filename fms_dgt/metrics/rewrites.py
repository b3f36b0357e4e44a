"""Lexical checks on a model's rewrite of a text, no model involved: the evol builders ask a
model to rewrite an instruction or a response and must tell a usable rewrite from the ways a
small model fails at it (nothing, the same text, its own prompt echoed back, talk about the
rewriting task, a loop, or a different subject).

Content words are the lower-cased words of three letters or more (or numbers) that are not
common function words, with a plural or verb ending (-s, -es, -ed, -ing) and then a final -e
cut, so "floats" and "float" count as one word. Sharing content words says a rewrite stays
on the original's subject; it cannot tell a faithful paraphrase in other words from a wrong
one (a judge builder can).
"""

from __future__ import annotations

import re
from collections import Counter

from fms_dgt.metrics.text import normalize_answer, tokenize

_STOPWORDS = """about above after again also and any are because been before being below between both but
    can could did does doing down during each few for from further had has have having her here
    hers him his how into its itself just more most much must not now off once only other our out
    over own same she should some such than that the their them then there these they this those
    through too under until very was were what when where which while who whom why will with would
    you your yours"""
STOPWORDS = frozenset(_STOPWORDS.split())
_LETTER = re.compile(r"[^\W\d_]")


def stem(word: str) -> str:
    """``word`` without one ending (-ing, -ed, -es, -s) and then a final -e, keeping three
    letters at least: bake, bakes, baked and baking are all ``bak``."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def content_words(text: str) -> set[str]:
    """The stems of ``text``'s content words."""
    return {stem(w) for w in tokenize(text) if (len(w) >= 3 or w.isdigit()) and w not in STOPWORDS}


def kept_share(original: str, rewrite: str) -> float:
    """The share of ``original``'s content words that ``rewrite`` still has (1.0 if it has none)."""
    words = content_words(original)
    return len(words & content_words(rewrite)) / len(words) if words else 1.0


def trigrams(text: str) -> set[tuple[str, ...]]:
    """``text``'s word trigrams (a prompt's are what a model that echoes it copies)."""
    words = tokenize(text)
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def echoes(text: str, frame: set[tuple[str, ...]]) -> bool:
    """Whether at least half of ``text``'s word trigrams come from ``frame`` (a prompt's own
    words): the model copied its prompt instead of writing."""
    grams = trigrams(text)
    return bool(grams) and sum(g in frame for g in grams) >= 0.5 * len(grams)


def loops(text: str, size: int = 3) -> int:
    """How often the most frequent word ``size``-gram of ``text`` occurs."""
    words = tokenize(text)
    counts = Counter(tuple(words[i : i + size]) for i in range(len(words) - size + 1))
    return max(counts.values(), default=0)


def rewrite_problem(
    rewrite: str,
    original: str,
    frame: set[tuple[str, ...]],
    *,
    what: str,
    meta: tuple[str, ...],
    instead: str,
    loop_size: int = 3,
) -> str | None:
    """Why ``rewrite`` of the ``what`` ("instruction", "response") ``original`` is not a
    rewrite at all, or None. ``frame``: the word trigrams of the prompt around the original
    (more than half of the rewrite's trigrams from it, not from the original, is an echo);
    ``meta``: phrases of the rewriting task that a rewrite must not use where the original
    did not; ``instead``: what the rewrite should be doing (for that message)."""
    if not _LETTER.search(rewrite):
        return f"empty {what}"
    if normalize_answer(rewrite) == normalize_answer(original):
        return f"identical to the original {what}"
    if echoes(rewrite, frame - trigrams(original)):
        return f"the model echoed the prompt instead of rewriting the {what}"
    lowered, before = " ".join(tokenize(rewrite)), " ".join(tokenize(original))
    for phrase in meta:
        if phrase in lowered and phrase not in before:
            return f"talks about the rewriting ('{phrase}') instead of {instead}"
    if loops(rewrite, loop_size) >= 3 > loops(original, loop_size):
        return "repeats itself"
    return None
