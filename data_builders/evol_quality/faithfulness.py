"""Whether a rewritten response is usable and faithful to the original: the shared lexical
rewrite checks (fms_dgt/metrics/rewrites.py) and faithfulness on content words. A rewrite
must keep at least ``min_overlap`` of the original's content words and every number the
original gives. This catches a rewrite that drops or replaces the original's points; it
cannot tell a faithful paraphrase that uses other words from a wrong one (a judge builder
can)."""

from __future__ import annotations

import re

from fms_dgt.metrics.rewrites import kept_share, rewrite_problem

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


def unusable(rewrite: str, original: str, frame: set[tuple[str, ...]]) -> str | None:
    """Why ``rewrite`` of the response ``original`` cannot be used (faithfulness aside), or
    None. ``frame``: the word trigrams of the prompt around the instruction and response."""
    return rewrite_problem(
        rewrite, original, frame, what="response", meta=META, instead="answering the user", loop_size=4
    )


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
