"""Whether a rewritten response is usable and faithful to the original: simple lexical
checks, no model.

Faithfulness is measured on content words: the lower-cased words of three letters or more
(and numbers) that are not common function words, with a plural or verb ending (-s, -es,
-ed, -ing) and a final -e cut, so "apples" and "apple" count as one word. A rewrite must keep at least
``min_overlap`` of the original's content words and every number the original gives. This
catches a rewrite that drops or replaces the original's points; it cannot tell a faithful
paraphrase that uses other words from a wrong one (a judge builder can)."""

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
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# phrases of the rewriting task itself: a response using them (where the original did not)
# talks about the task instead of answering the user
META = (
    "original response",
    "new response",
    "rewritten response",
    "better response",
    "improved response",
    "the response above",
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
    """The share of ``original``'s content words ``rewrite`` still has (1.0 if it has none)."""
    words = content_words(original)
    return len(words & content_words(rewrite)) / len(words) if words else 1.0


def trigrams(text: str) -> set[tuple[str, ...]]:
    words = tokenize(text)
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def loops(text: str, size: int = 4) -> int:
    """How often the most frequent word ``size``-gram of ``text`` occurs."""
    words = tokenize(text)
    counts = Counter(tuple(words[i : i + size]) for i in range(len(words) - size + 1))
    return max(counts.values(), default=0)


def unusable(rewrite: str, original: str, frame: set[tuple[str, ...]]) -> str | None:
    """Why ``rewrite`` of the response ``original`` cannot be used (faithfulness aside), or
    None. ``frame``: the word trigrams of the prompt around the instruction and response."""
    if not re.search(r"[^\W\d_]", rewrite):
        return "empty response"
    if normalize_answer(rewrite) == normalize_answer(original):
        return "identical to the original response"
    grams = trigrams(rewrite)
    if grams and sum(g in frame for g in grams) >= 0.5 * len(grams):
        return "the model echoed the prompt instead of rewriting the response"
    lowered, before = " ".join(tokenize(rewrite)), " ".join(tokenize(original))
    for phrase in META:
        if phrase in lowered and phrase not in before:
            return f"talks about the rewriting ('{phrase}') instead of answering the user"
    if loops(rewrite) >= 3 > loops(original):
        return "repeats itself"
    return None


def unfaithful(rewrite: str, original: str, min_overlap: float) -> tuple[float, str | None]:
    """``(share of the original's content words kept, why the rewrite is unfaithful or None)``."""
    share = kept_share(original, rewrite)
    if share < min_overlap:
        return share, (
            f"drops the original's content: keeps {share:.0%} of its content words (min_overlap {min_overlap:g})"
        )
    have = set(_NUMBER.findall(rewrite))
    lost = [n for n in dict.fromkeys(_NUMBER.findall(original)) if n not in have]
    if lost:
        return share, f"drops the number {lost[0]} the original gives"
    return share, None
