"""The tasks under an output folder and how each is going: what the overview page shows.

Everything is read fresh on every request (``task_results.json`` is rewritten atomically by
the run; record counts come from the store indexes, which only scan what was appended), so
the overview of a running task moves as it runs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fms_dgt.datastores.base import read_json
from fms_dgt.report import store_format
from fms_dgt.view.security import contained
from fms_dgt.view.store_index import IndexCache

MARKERS = ("task_results.json", "task_card.json", "state.json")
RECORD_STORES = ("data", "final_data", "formatted_data", "rejected", "failed")


def find_tasks(root: Path) -> dict[str, Path]:
    """Task name (its folder relative to ``root``, ``/``-separated) -> folder, for every
    task folder under ``root`` at any depth. Symlinked folders are not followed (one could
    point anywhere); hidden folders and parquet store folders are skipped."""
    found: dict[str, Path] = {}
    root = root.resolve()

    def walk(d: Path) -> None:
        try:
            children = sorted(d.iterdir())
        except OSError:
            return
        for child in children:
            if child.name.startswith(".") or child.is_symlink() or not child.is_dir():
                continue
            if child.suffix == ".parquet":
                continue
            if is_task_folder(child):
                found[child.relative_to(root).as_posix()] = child
            else:
                walk(child)

    if is_task_folder(root):
        found[root.name] = root
    else:
        walk(root)
    return found


def is_task_folder(d: Path) -> bool:
    return any((d / m).is_file() for m in MARKERS) or any(store_format(d, s) for s in RECORD_STORES)


def store_path(root: Path, task_dir: Path, store: str) -> Path | None:
    """The file (jsonl) or folder (parquet) of ``store``, if present and inside ``root``."""
    fmt = store_format(task_dir, store)
    if fmt is None:
        return None
    path = task_dir / f"{store}.{fmt}"
    return path if contained(root, path) is not None else None


def read_task_json(root: Path, task_dir: Path, name: str) -> dict[str, Any]:
    path = task_dir / name
    if contained(root, path) is None:
        return {}
    return read_json(path) or {}


@dataclass
class TaskStatus:
    name: str
    status: str
    target: int | None
    counts: dict[str, int]  # records in each store present
    elapsed: float | None
    rate: float | None  # accepted records per second
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    started_at: str | None = None
    message: str | None = None

    @property
    def progress(self) -> float | None:
        if not self.target:
            return None
        return min(1.0, self.counts.get("data", 0) / self.target)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "target": self.target,
            "counts": self.counts,
            "progress": self.progress,
            "elapsed": self.elapsed,
            "rate": self.rate,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
        }


def task_status(root: Path, name: str, task_dir: Path, cache: IndexCache) -> TaskStatus:
    results = read_task_json(root, task_dir, "task_results.json")
    state = read_task_json(root, task_dir, "state.json")
    counts = {}
    for store in RECORD_STORES:
        path = store_path(root, task_dir, store)
        if path is not None:
            counts[store] = len(cache.get(path))
    status = str(results.get("status") or state.get("status") or "not started")
    if status == "running" and not _alive(results.get("pid")):
        status = "interrupted"  # the run's process is gone: the same command resumes it
    elapsed = _elapsed(results, status)
    accepted = counts.get("data", 0)
    tokens = dict(results.get("tokens") or {})
    if tokens:
        tokens["total"] = int(tokens.get("prompt", 0)) + int(tokens.get("completion", 0))
    target = results.get("target")
    return TaskStatus(
        name=name,
        status=status,
        target=int(target) if isinstance(target, int) else None,
        counts=counts,
        elapsed=elapsed,
        rate=(accepted / elapsed) if elapsed else None,
        tokens=tokens,
        cost_usd=results.get("cost_usd"),
        started_at=results.get("started_at"),
        message=results.get("message"),
    )


def _alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this machine (unknown counts as alive)."""
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _elapsed(results: dict[str, Any], status: str) -> float | None:
    """Seconds the run has taken: the results' figure, or for a running task the time since
    its start (results are rewritten only now and then while it runs)."""
    if status == "running" and isinstance(results.get("started_at"), str):
        try:
            return max(0.0, time.time() - datetime.fromisoformat(results["started_at"]).timestamp())
        except ValueError:
            pass
    value = results.get("elapsed_seconds")
    return float(value) if isinstance(value, (int, float)) else None
