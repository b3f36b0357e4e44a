"""Reference metrics of a data set: how close one field of each record is to a reference
field of the same record (a generated answer against a seed or gold answer, a summary
against the source's abstract), as ROUGE-1/2/L F1, exact match and token F1.

One function, ``reference_metrics(records, field, reference)``, used by
``python -m fms_dgt.report --reference field:reference`` and meant for any other consumer
(a dataset card): it streams the records once and returns plain JSON-able numbers. The
per-pair scores are those of ``fms_dgt.metrics.text`` (the same ROUGE-L as the
``rouge_dedup`` block), so there is one implementation of each metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fms_dgt.metrics.text import exact_match, rouge_l, rouge_n, token_f1, tokenize

METRICS = ("rouge1", "rouge2", "rougeL", "exact_match", "token_f1")
LABELS = {
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "exact_match": "exact match",
    "token_f1": "token F1",
}


def field_value(record: Mapping[str, Any], path: str) -> Any:
    """``record[path]``, where a dotted path walks nested mappings (``meta.answer``); None
    when any step is missing."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _texts(value: Any) -> list[str] | None:
    """A reference may be one text or several (the best match counts); None if neither."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def pair_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """The five scores of one prediction; with several references, the best of each."""
    pred_toks = tokenize(prediction)
    ref_toks = [tokenize(r) for r in references]
    return {
        "rouge1": max(rouge_n(pred_toks, r, 1).f1 for r in ref_toks),
        "rouge2": max(rouge_n(pred_toks, r, 2).f1 for r in ref_toks),
        "rougeL": max(rouge_l(pred_toks, r).f1 for r in ref_toks),
        "exact_match": exact_match(prediction, references),
        "token_f1": token_f1(prediction, references),
    }


def reference_metrics(records: Iterable[Mapping[str, Any]], field: str, reference: str) -> dict[str, Any]:
    """Scores of ``field`` against ``reference`` over ``records`` (dicts; dotted names reach
    into nested ones).

    Returns ``{"field", "reference", "records", "scored", "missing", "metrics"}`` where
    ``metrics[name]`` is ``{"mean", "p10", "p50", "p90"}`` for each of rouge1, rouge2, rougeL,
    exact_match and token_f1 (F1 for the ROUGE scores), rounded to 4 places, or None when no
    record had both fields as text. ``missing`` counts records where either is absent or not
    text (a reference may also be a list of texts: the best match counts).
    """
    scores: dict[str, list[float]] = {m: [] for m in METRICS}
    total = missing = 0
    for record in records:
        total += 1
        pred, refs = field_value(record, field), _texts(field_value(record, reference))
        if not isinstance(pred, str) or refs is None:
            missing += 1
            continue
        for name, value in pair_scores(pred, refs).items():
            scores[name].append(value)
    scored = total - missing
    metrics: dict[str, dict[str, float] | None] = {}
    for name, values in scores.items():
        if not values:
            metrics[name] = None
            continue
        arr = np.asarray(values)
        p10, p50, p90 = np.quantile(arr, [0.1, 0.5, 0.9])
        metrics[name] = {
            "mean": round(float(arr.mean()), 4),
            "p10": round(float(p10), 4),
            "p50": round(float(p50), 4),
            "p90": round(float(p90), 4),
        }
    return {
        "field": field,
        "reference": reference,
        "records": total,
        "scored": scored,
        "missing": missing,
        "metrics": metrics,
    }


def parse_spec(spec: str) -> tuple[str, str]:
    """``"answer:gold_answer"`` -> ("answer", "gold_answer"); ValueError naming the form."""
    field, sep, reference = spec.partition(":")
    if not sep or not field.strip() or not reference.strip() or ":" in reference:
        raise ValueError(f"--reference expects FIELD:REFERENCE_FIELD (e.g. answer:gold_answer), got '{spec}'")
    return field.strip(), reference.strip()


def render(result: Mapping[str, Any]) -> str:
    """One line: ``answer vs gold_answer: 12 of 12 records: ROUGE-1 0.53 ...`` (means)."""
    head = f"{result['field']} vs {result['reference']}: {result['scored']} of {result['records']} records"
    if not result["scored"]:
        return head + " have both fields as text"
    means = ", ".join(f"{LABELS[m]} {result['metrics'][m]['mean']:.3f}" for m in METRICS)
    return f"{head}: {means}"
