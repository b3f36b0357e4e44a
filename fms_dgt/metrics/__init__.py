"""Text metrics for synthetic data: reference-based scores (ROUGE-1/2/L, exact match, token
F1; ``reference_metrics`` for a whole data set) and set-level diversity (distinct-n, self-similarity). Pure Python + numpy: importing them
loads no model."""

from fms_dgt.metrics.diversity import distinct_n, self_similarity
from fms_dgt.metrics.reference import reference_metrics
from fms_dgt.metrics.text import (
    Score,
    exact_match,
    lcs_length,
    normalize_answer,
    rouge_l,
    rouge_n,
    token_f1,
    tokenize,
)

__all__ = [
    "Score",
    "distinct_n",
    "exact_match",
    "lcs_length",
    "normalize_answer",
    "reference_metrics",
    "rouge_l",
    "rouge_n",
    "self_similarity",
    "token_f1",
    "tokenize",
]
