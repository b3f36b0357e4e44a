"""The end-of-run summary table (and the where-things-stand note after an interruption)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fms_dgt.config.env import redact
from fms_dgt.datastores.base import read_json

COLUMNS = (
    "task",
    "status",
    "final",
    "accepted",
    "rejected",
    "failed",
    "requests",
    "tokens",
    "cost",
    "seconds",
)


def _row(name: str, status: str, results: dict[str, Any]) -> list[str]:
    counts = results.get("counts", {})
    tokens = results.get("tokens", {})
    final = str(counts.get("final", 0))
    if results.get("target"):
        final += f"/{results['target']}"
    return [
        name,
        status,
        final,
        str(counts.get("accepted", 0)),
        str(counts.get("rejected", 0)),
        str(counts.get("failed", 0)),
        str(results.get("requests", 0)),
        str(tokens.get("prompt", 0) + tokens.get("completion", 0)),
        f"${results.get('cost_usd', 0):.4f}",
        f"{results.get('elapsed_seconds', 0):.1f}",
    ]


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [list(COLUMNS), *rows]) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def print_summary(outcomes: list[Any], output_dir: Path) -> None:
    rows = [_row(o.task_name, o.status, o.results) for o in outcomes]
    print(_table(rows))
    for o in outcomes:
        if o.message and o.status != "complete":
            print(_about(o.task_name, redact(o.message)))
    for o in outcomes:
        written = sorted(f.name for f in _files(output_dir / o.task_name) if not f.name.startswith("."))
        print(f"outputs: {output_dir / o.task_name}/ ({', '.join(written) or 'nothing written'})")


def _about(task_name: str, message: str) -> str:
    """``task: message``, without repeating the name when the message already starts with it."""
    return message if message.startswith(f"{task_name}: ") else f"{task_name}: {message}"


def _files(task_dir: Path) -> list[Path]:
    return list(task_dir.iterdir()) if task_dir.is_dir() else []


def print_interrupted(runtime: Any) -> None:
    rows = []
    for pt in runtime.prepared:
        results = read_json(pt.task.task_dir / "task_results.json") or {}
        rows.append(_row(pt.task.task_name, results.get("status", "not started"), results))
    print("interrupted; nothing accepted was lost. Where things stand:")
    print(_table(rows))
    for pt in runtime.prepared:
        message = (read_json(pt.task.task_dir / "task_results.json") or {}).get("message")
        if message:
            print(_about(pt.task.task_name, message))
    for pt in runtime.prepared:
        print(f"outputs: {pt.task.task_dir}/")
    print("run the same command again to continue (add --restart to start over)")
