"""``--preview N``: a few records through the whole pipeline before a long run.

Each selected task makes N records (a transformation processes its first N input rows)
with everything its builder does (filters, dedup, judges, postprocessors), in a temporary
output folder that is deleted afterwards, so nothing is written under the task's own
output folder and the real run later starts from nothing. The records are printed with
every rejection and its reason and every failed request, followed by what the whole task
would take at the rates seen: requests, tokens, seconds and cost, scaled to its target.

With the engines' response cache on (``cache: true``), the real run reuses the preview's
answers: the same seed asks the same first requests, which the cache then answers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fms_dgt.datastores.base import read_json

SHOWN_CHARS = 400  # of each record printed


def preview_overrides(runner: dict[str, Any], n: int) -> dict[str, Any]:
    """The runner settings of a preview of ``n`` records."""
    return {**runner, "num_outputs_to_generate": n, "max_input_rows": n}


def targets(runtime: Any) -> dict[str, tuple[int, str]]:
    """Each prepared task's full size: (records wanted or input rows, unit)."""
    out: dict[str, tuple[int, str]] = {}
    for pt in runtime.prepared:
        task = pt.task
        if hasattr(task, "iter_input"):
            rows = sum(1 for _ in task.iter_input())
            limit = task.runner_config.max_input_rows
            out[task.task_name] = (min(rows, limit) if limit else rows, "input rows")
        else:
            out[task.task_name] = (task.runner_config.num_outputs_to_generate, "records")
    return out


def run_preview(
    make_runtime: Callable[[Path], Any], full: dict[str, tuple[int, str]], n: int, run: Any
) -> int:
    """Run the preview runtime ``make_runtime(tmp_dir)`` with ``run`` and print what it
    made; returns the number of tasks whose preview made no record."""
    tmp = Path(tempfile.mkdtemp(prefix="dgt-preview-"))
    try:
        runtime = make_runtime(tmp)
        runtime.prepare()
        outcomes = run(runtime)
        if outcomes is None:
            return -1
        empty = 0
        for outcome in outcomes:
            empty += not _show(tmp / outcome.task_name, outcome, full.get(outcome.task_name), n)
        return empty
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _show(task_dir: Path, outcome: Any, full: tuple[int, str] | None, n: int) -> bool:
    records = _read(task_dir / "final_data.jsonl") or _read(task_dir / "data.jsonl")
    rejected = _read(task_dir / "rejected.jsonl")
    failed = _read(task_dir / "failed.jsonl")
    results = read_json(task_dir / "task_results.json") or outcome.results or {}
    print(f"== {outcome.task_name}: preview of {n} ({outcome.status})")
    for i, record in enumerate(records, 1):
        print(f"  [{i}] {_short(record)}")
    if not records:
        print("  no record was kept")
    for r in rejected:
        print(f"  rejected by {r.get('block')}: {r.get('reason')}")
        print(f"      {_short(r.get('record'))}")
    for f in failed:
        print(f"  failed ({f.get('engine') or f.get('stage')}): {f.get('error')}")
    print("  " + _estimate(results, len(records), n, full))
    return bool(records)


def _estimate(results: dict[str, Any], made: int, n: int, full: tuple[int, str] | None) -> str:
    tokens = results.get("tokens") or {}
    spent = {
        "requests": float(results.get("requests") or 0),
        "tokens": float(tokens.get("prompt", 0) + tokens.get("completion", 0)),
        "seconds": float(results.get("elapsed_seconds") or 0),
        "cost": float(results.get("cost_usd") or 0),
    }
    line = (
        f"preview: {int(spent['requests'])} requests, {int(spent['tokens'])} tokens, "
        f"{spent['seconds']:.1f} s (with engine start-up), ${spent['cost']:.4f}"
    )
    if full is None:
        return line
    size, unit = full
    # per record accepted, not per record shown: the calls still in flight when the preview
    # had its N records were accepted too (and cost), and the full run has few such
    accepted = int((results.get("counts") or {}).get("accepted") or made)
    done = max(made, accepted) if unit == "records" else min(n, size)
    if done <= 0:
        return line + f"; no estimate for the {size} {unit} (nothing was kept)"
    scale = size / done
    return line + (
        f"\n  estimate for all {size} {unit}: ~{spent['requests'] * scale:.0f} requests, "
        f"~{spent['tokens'] * scale:.0f} tokens, ~{spent['seconds'] * scale:.0f} s, "
        f"~${spent['cost'] * scale:.2f}"
    )


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _short(record: Any) -> str:
    if isinstance(record, dict):
        record = {k: v for k, v in record.items() if k not in ("lineage", "id")}
    text = json.dumps(record, ensure_ascii=False, default=str)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."
