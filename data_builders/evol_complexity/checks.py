"""Why a harder rewrite of an instruction cannot be used: the shared lexical rewrite checks
(fms_dgt/metrics/rewrites.py), then two of its own: the rewrite keeps the original's subject
(``min_overlap`` of its content words) and is not shorter (a harder instruction keeps what
it asks and adds to it)."""

from __future__ import annotations

from fms_dgt.metrics.rewrites import kept_share, rewrite_problem
from fms_dgt.metrics.text import tokenize

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


def unusable(rewrite: str, original: str, frame: set[tuple[str, ...]], min_overlap: float) -> str | None:
    """Why ``rewrite`` of ``original`` cannot be used, or None. ``frame``: the word trigrams
    of the prompt around the instruction (what a model that echoes its prompt copies)."""
    problem = rewrite_problem(
        rewrite, original, frame, what="instruction", meta=META, instead="being an instruction"
    )
    if problem is not None:
        return problem
    share = kept_share(original, rewrite)
    if share < min_overlap:
        return (
            f"drifts from the original: keeps {share:.0%} of its content words (min_overlap {min_overlap:g})"
        )
    if len(tokenize(rewrite)) < len(tokenize(original)):
        return "shorter than the original: a harder instruction keeps what it asks and adds to it"
    return None
