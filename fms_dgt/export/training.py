"""The training config written beside fine-tuning data, and the checks that the data suits
the training task.

``training_config.json`` says what a fine-tuning tool needs to start: the task
(``text-generation``, ``summarization``, ``extractive-question-answering``), where the
files of each split are, their columns, and ``max_seq_length`` chosen from the data's
token lengths: the smallest power of two (at least 128) that holds the longest row, so no
row is cut. Token lengths come from a tokenizer when one is given (a ``tokenizer.json`` or
a folder holding one, read with the light ``tokenizers`` package), else from an estimate:
the larger of the whitespace word count and characters / 4 (English text averages about
four characters per token; the estimate errs long, which only costs padding).

Sizes below what fine-tuning tools recommend per task, and rows that look like another
task (class labels exported as text generation, "summaries" longer than their inputs,
"extracted" answers as long as essays), are warnings: written into the config and the
dataset card, and printed by the export.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# minimum / recommended range of training rows, per task
RECOMMENDED_ROWS: dict[str, tuple[int, int, int]] = {
    "text-generation": (50, 500, 1000),
    "summarization": (100, 1000, 2000),
    "extractive-question-answering": (200, 1000, 3000),
}
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "text-generation": ("input", "output"),
    "summarization": ("input", "output"),
    "extractive-question-answering": ("context", "question", "answer"),
}


@dataclass
class TokenCounter:
    """Counts tokens with a ``tokenizers`` tokenizer, or estimates them."""

    tokenizer_path: str | None = None
    _tokenizer: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tokenizer_path is None:
            return
        from tokenizers import Tokenizer

        path = Path(self.tokenizer_path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise ValueError(f"no tokenizer.json at {self.tokenizer_path}")
        self._tokenizer = Tokenizer.from_file(str(path))

    @property
    def method(self) -> str:
        return f"tokenizer {self.tokenizer_path}" if self._tokenizer is not None else "estimate"

    def counts(self, texts: Sequence[str]) -> list[int]:
        if self._tokenizer is not None:
            return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]
        return [estimate_tokens(t) for t in texts]


def estimate_tokens(text: str) -> int:
    """max(words, ceil(chars / 4)): see the module docstring."""
    return max(len(text.split()), math.ceil(len(text) / 4))


def max_seq_length(lengths: Sequence[int]) -> int:
    longest = max(lengths, default=0)
    return max(128, 1 << max(0, math.ceil(math.log2(max(longest, 1)))))


def training_config(
    task: str,
    rows_by_split: dict[str, list[dict[str, Any]]],
    data_files: dict[str, str],
    counter: TokenCounter,
    record_fields: set[str] | None = None,
) -> dict[str, Any]:
    """The config (with its ``warnings``) for ``task`` over the formatted rows;
    ``record_fields``: the fields of the task's final records (a ``label`` among them is a
    sign of classification data)."""
    columns = TEXT_COLUMNS.get(task, ())
    all_rows = [r for rows in rows_by_split.values() for r in rows]
    texts = ["\n".join(str(r.get(c) or "") for c in columns) for r in all_rows]
    lengths = sorted(counter.counts(texts))
    p95 = lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))] if lengths else 0
    train_rows = len(rows_by_split.get("train", all_rows))
    return {
        "task": task,
        "dataset": {"format": "parquet", "data_files": data_files, "columns": list(columns)},
        "num_rows": {s: len(r) for s, r in rows_by_split.items()},
        "max_seq_length": max_seq_length(lengths),
        "token_lengths": {
            "method": counter.method,
            "max": lengths[-1] if lengths else 0,
            "p95": p95,
            "mean": round(sum(lengths) / len(lengths), 1) if lengths else 0,
        },
        "warnings": size_warnings(task, train_rows)
        + shape_warnings(task, all_rows)
        + field_warnings(task, record_fields or set()),
    }


def size_warnings(task: str, train_rows: int) -> list[str]:
    if task not in RECOMMENDED_ROWS:
        return []
    minimum, low, high = RECOMMENDED_ROWS[task]
    if train_rows < minimum:
        return [
            f"{train_rows} training rows is below the minimum of {minimum} for {task} "
            f"(recommended {low:,}-{high:,}): generate more before fine-tuning"
        ]
    if train_rows < low:
        return [f"{train_rows} training rows is below the recommended {low:,}-{high:,} for {task}"]
    return []


def field_warnings(task: str, record_fields: set[str]) -> list[str]:
    """Records shaped like classification data (``text``/``label``) exported as generation."""
    if task in ("text-generation", "summarization") and "label" in record_fields:
        return [
            f"the records have a 'label' field ({', '.join(sorted(record_fields & {'text', 'label'}))}): "
            f"classification data exported as {task}? (a classifier trains on text/label pairs)"
        ]
    return []


def _words(text: Any) -> int:
    return len(str(text or "").split())


def shape_warnings(task: str, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Signs that the rows are data for another task."""
    if not rows:
        return []
    out: list[str] = []
    if task in ("text-generation", "summarization"):
        outputs = [str(r.get("output") or "").strip() for r in rows]
        distinct = Counter(outputs)
        mean_out = sum(_words(o) for o in outputs) / len(outputs)
        if len(rows) >= 10 and len(distinct) <= max(2, len(rows) // 20) and mean_out <= 3:
            labels = ", ".join(repr(k) for k, _ in distinct.most_common(5))
            out.append(
                f"the outputs are {len(distinct)} short values repeated across {len(rows)} rows ({labels}): "
                "this looks like classification (text/label) data, not " + task
            )
    if task == "summarization":
        longer = sum(1 for r in rows if _words(r.get("output")) >= _words(r.get("input")))
        if longer > len(rows) / 2:
            out.append(
                f"{longer} of {len(rows)} outputs are at least as long as their input: "
                "this does not look like summarization"
            )
    if task == "extractive-question-answering":
        long = sum(
            1
            for r in rows
            if _words(r.get("answer")) > 30
            or len(str(r.get("answer") or "")) > 0.5 * len(str(r.get("context") or "x"))
        )
        if long > len(rows) / 2:
            out.append(
                f"{long} of {len(rows)} answers are long spans (over 30 words or half the context): "
                "extractive QA trains on short spans; this looks like generative QA"
            )
    return out
