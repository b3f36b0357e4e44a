"""The word-level tokenizer that document chunk sizes are counted in, and the windows
(chunks with overlap) cut from it.

A token is a maximal run of non-whitespace characters (the regular expression ``\\S+``):
``"The Moon's orbit takes 27.3 days."`` is 6 tokens. No model and no download is needed,
the count is the same on every machine, and every token's character span is known, so each
chunk is an exact slice ``text[start:end]`` of its document.

Model tokenizers cut finer: English prose averages roughly 1.3 model tokens per word (BPE
tokenizers such as SmolLM2's or Llama's), so ``chunk_tokens: 300`` is about 400 model tokens.
Leave room in the model's context for the prompt around a chunk and for the answer.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\S+")


def token_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` character span of every token of ``text``, in order."""
    return [m.span() for m in _TOKEN.finditer(text)]


def count_tokens(text: str) -> int:
    """How many tokens ``text`` has (as ``token_spans`` counts them)."""
    return sum(1 for _ in _TOKEN.finditer(text))


def windows(n_tokens: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Token index windows ``[first, last)`` of ``size`` tokens covering ``n_tokens`` tokens,
    each starting ``size - overlap`` tokens after the previous one.

    A text no longer than ``size`` is one window. The last window ends at the last token
    and is full-size (it overlaps its predecessor by more than ``overlap`` when the text
    does not divide evenly), so no chunk is a short tail with little to ask about.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be at least 0 and below size ({size}), got {overlap}")
    if n_tokens <= size:
        return [(0, n_tokens)] if n_tokens else []
    step = size - overlap
    out: list[tuple[int, int]] = []
    first = 0
    while first + size < n_tokens:
        out.append((first, first + size))
        first += step
    out.append((n_tokens - size, n_tokens))
    return out
