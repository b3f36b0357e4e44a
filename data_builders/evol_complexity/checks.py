"""Why a rewritten instruction cannot be used: simple lexical checks, no model.

Content words are the lower-cased words of three letters or more (or numbers) that are not
common function words, with a plural or verb ending (-s, -es, -ed, -ing) and a final -e cut,
so "floats" and "float" count as one word."""

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
# phrases of the rewriting task itself: a result using them (where the original did not)
# talks about the task instead of being an instruction
META = (
    "original instruction",
    "new instruction",
    "rewritten instruction",
    "harder instruction",
    "the instruction above",
    "this rewriting",
    "previous version",
)


def stem(word: str) -> str:
    """``word`` without one ending (-ing, -ed, -es, -s) and then a final -e, keeping three
    letters at least: bake, bakes, baked and baking are all ``bak``."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in tokenize(text) if (len(w) >= 3 or w.isdigit()) and w not in STOPWORDS}


def kept_share(original: str, rewrite: str) -> float:
    """The share of ``original``'s content words that ``rewrite`` still has (1.0 if it has none)."""
    words = content_words(original)
    return len(words & content_words(rewrite)) / len(words) if words else 1.0


def trigrams(text: str) -> set[tuple[str, ...]]:
    words = tokenize(text)
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def loops(text: str, size: int = 3) -> int:
    """How often the most frequent word ``size``-gram of ``text`` occurs."""
    words = tokenize(text)
    counts = Counter(tuple(words[i : i + size]) for i in range(len(words) - size + 1))
    return max(counts.values(), default=0)


def unusable(rewrite: str, original: str, frame: set[tuple[str, ...]], min_overlap: float) -> str | None:
    """Why ``rewrite`` of ``original`` cannot be used, or None. ``frame``: the word trigrams
    of the prompt around the instruction (what a model that echoes its prompt copies)."""
    if not re.search(r"[^\W\d_]", rewrite):
        return "empty instruction"
    if normalize_answer(rewrite) == normalize_answer(original):
        return "identical to the original"
    grams = trigrams(rewrite)
    copied = frame - trigrams(original)
    if grams and sum(g in copied for g in grams) >= 0.5 * len(grams):
        return "the model echoed the prompt instead of rewriting the instruction"
    lowered, before = " ".join(tokenize(rewrite)), " ".join(tokenize(original))
    for phrase in META:
        if phrase in lowered and phrase not in before:
            return f"talks about the rewriting ('{phrase}') instead of being an instruction"
    if loops(rewrite) >= 3 > loops(original):
        return "repeats itself"
    share = kept_share(original, rewrite)
    if share < min_overlap:
        return (
            f"drifts from the original: keeps {share:.0%} of its content words (min_overlap {min_overlap:g})"
        )
    if len(tokenize(rewrite)) < len(tokenize(original)):
        return "shorter than the original: a harder instruction keeps what it asks and adds to it"
    return None
