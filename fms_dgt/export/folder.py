"""``export_task``: a task's output folder to a dataset folder the Hugging Face Hub (and
``datasets.load_dataset``) reads as it is.

Layout of the folder::

    README.md                       the dataset card (YAML front matter: license, task
                                    categories, size category, configs with a data_files
                                    entry per split)
    data/<split>-NNNNN-of-MMMMM.parquet
                                    final_data, one split per file prefix (the task's
                                    runner_config.split files, else everything as train);
                                    nested fields are Arrow structs and lists
    finetune/<split>-NNNNN-of-MMMMM.parquet
                                    formatted_data (the fine-tuning format), when the task
                                    wrote it: config ``finetune`` of the card
    training_config.json            for the fine-tuning formats that have a training task

All splits of a config are one Arrow table cut into pieces, so every shard has the same
schema (``datasets`` reads a config with one set of features). Both configs are parquet:
``datasets`` reads every config of a folder with one builder, so a jsonl config beside a
parquet one would not load. ``load_dataset("parquet", data_dir=...)`` reads one config's
folder (``data``; the whole folder when there is no ``finetune``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fms_dgt.datastores.base import read_json
from fms_dgt.datastores.roles import FINAL, FORMATTED, SPLIT_NAMES, split_name
from fms_dgt.export.arrow import records_table
from fms_dgt.export.training import TokenCounter, training_config
from fms_dgt.report import is_task_dir, read_store, store_format, task_name_of, task_report

DATA_DIR, FINETUNE_DIR = "data", "finetune"
CARD, TRAINING_CONFIG = "README.md", "training_config.json"
MARKER = "<!-- written by python -m fms_dgt.export -->"
REPORT_MAX_RECORDS = 10_000  # diversity figures of bigger tasks are over a sample


class ExportError(ValueError):
    """The export cannot be made (not a task output folder, an unsafe target): exit 2."""


@dataclass
class ExportResult:
    task_name: str
    out_dir: Path
    rows: dict[str, int]  # final_data rows per split
    finetune_rows: dict[str, int] = field(default_factory=dict)
    training: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def check_task_dir(task_dir: Path) -> None:
    if not task_dir.is_dir():
        raise ExportError(f"'{task_dir}' does not exist or is not a folder")
    if not is_task_dir(task_dir):
        inside = sorted(p.parent for p in task_dir.rglob("task_results.json") if is_task_dir(p.parent))
        found = ""
        if inside:  # an output_dir was given: name its tasks
            shown = ", ".join(f"'{p}'" for p in inside[:5]) + (" ..." if len(inside) > 5 else "")
            found = f"; it holds the task folder(s) {shown}: export one of them"
        raise ExportError(
            f"'{task_dir}' is not a task's output folder (expected <output_dir>/<task_name>/ holding "
            f"task_results.json and final_data.jsonl or final_data.parquet){found}"
        )
    if store_format(task_dir, FINAL) is None:
        raise ExportError(
            f"'{task_dir}' has no final_data yet: the task has not finished a postprocessing pass "
            "(run it to completion first)"
        )


def _prepare_target(out_dir: Path, task_dir: Path) -> None:
    """Make ``out_dir`` ready, refusing to write into a folder that holds something else."""
    if out_dir.resolve() == task_dir.resolve() or task_dir.resolve() in out_dir.resolve().parents:
        raise ExportError(f"the export folder '{out_dir}' must not be inside the task folder '{task_dir}'")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"'{out_dir}' exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        card = out_dir / CARD
        ours = card.is_file() and MARKER in card.read_text(encoding="utf-8", errors="replace")
        if not ours:
            raise ExportError(f"'{out_dir}' is not empty (export into a new folder, or an earlier export's)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (DATA_DIR, FINETUNE_DIR):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in (CARD, TRAINING_CONFIG):
        (out_dir / name).unlink(missing_ok=True)


def _splits(task_dir: Path, base: str, split: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The records of ``base`` per split: its split stores, else everything as train."""
    if not split:
        return {"train": list(read_store(task_dir, base))}
    found = {s: list(read_store(task_dir, split_name(base, s))) for s in SPLIT_NAMES}
    present = {s: rows for s, rows in found.items() if store_format(task_dir, split_name(base, s))}
    return present or {"train": list(read_store(task_dir, base))}


def _write_parquet(
    out_dir: Path, folder_name: str, splits: dict[str, list[dict[str, Any]]], shard_rows: int
) -> dict[str, str]:
    """Write ``splits`` as ``<folder_name>/<split>-NNNNN-of-MMMMM.parquet``; the data_files
    glob of each split."""
    import pyarrow.parquet as pq

    table = records_table([r for rows in splits.values() for r in rows])
    data_files: dict[str, str] = {}
    folder = out_dir / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    start = 0
    for split, rows in splits.items():
        shards = max(1, -(-len(rows) // shard_rows))
        for i in range(shards):
            lo = start + i * shard_rows
            hi = min(start + len(rows), lo + shard_rows)
            pq.write_table(table.slice(lo, hi - lo), folder / f"{split}-{i:05d}-of-{shards:05d}.parquet")
        start += len(rows)
        data_files[split] = f"{folder_name}/{split}-*.parquet"
    return data_files


def formatter_training_task(card: dict[str, Any]) -> str | None:
    """The training task of the formatter the task card names (None: none or unknown)."""
    spec = (card.get("task_config") or {}).get("formatter")
    if not isinstance(spec, dict):
        return None
    try:
        import fms_dgt.formatters  # noqa: F401 - registers the built-ins
        from fms_dgt.registry import formatters, import_object

        if "class_path" in spec:
            cls = import_object(str(spec["class_path"]))
            kwargs = dict(spec.get("init_args") or {})
        else:
            cls = formatters.get(str(spec.get("type")))
            kwargs = {k: v for k, v in spec.items() if k != "type"}
        task = getattr(cls(**kwargs), "training_task", None)
    except Exception:  # a formatter that cannot be rebuilt here: no training config
        return None
    return task if isinstance(task, str) else None


def _report(task_dir: Path, name: str, sample: int, final: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's figures for the card. Diversity over every record costs seconds per
    100k records, so a bigger task is reported over an evenly spaced sample of
    ``REPORT_MAX_RECORDS`` final records (a folder holding that sample and links to the
    other stores); counts are the full ones."""
    final_count = len(final)
    if final_count <= REPORT_MAX_RECORDS:
        return task_report(task_dir, sample=sample, name=name)
    step = final_count / REPORT_MAX_RECORDS
    with tempfile.TemporaryDirectory() as tmp:
        view = Path(tmp) / task_dir.name
        view.mkdir()
        for child in task_dir.iterdir():
            if not child.name.startswith((FINAL, FORMATTED, ".")):
                (view / child.name).symlink_to(child.resolve(), target_is_directory=child.is_dir())
        with open(view / f"{FINAL}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(REPORT_MAX_RECORDS):
                fh.write(json.dumps(final[int(i * step)], ensure_ascii=False, default=str) + "\n")
        report = task_report(view, sample=sample, name=name)
    report["final"] = final_count
    report["diversity"]["source"] = f"an even sample of {REPORT_MAX_RECORDS:,} final_data records"
    return report


def export_task(
    task_dir: Path,
    out_dir: Path,
    *,
    license: str = "other",
    shard_rows: int = 100_000,
    tokenizer: str | None = None,
    report_sample: int = 100,
) -> ExportResult:
    """Write the dataset folder for ``task_dir`` into ``out_dir`` (see the module docstring)."""
    from fms_dgt.export.card import dataset_card

    started = time.perf_counter()
    task_dir, out_dir = Path(task_dir), Path(out_dir)
    check_task_dir(task_dir)
    if shard_rows < 1:
        raise ExportError("--shard-rows must be at least 1")
    counter = TokenCounter(tokenizer)  # a bad tokenizer path fails before anything is written
    _prepare_target(out_dir, task_dir)
    card = read_json(task_dir / "task_card.json") or {}
    name = str(card.get("task_name") or task_name_of(task_dir, task_dir.parent))
    # split files of a task that no longer asks for a split (its card says) are not used
    runner = card.get("runner_config")
    split = not isinstance(runner, dict) or runner.get("split") is not None
    final = _splits(task_dir, FINAL, split)
    data_files = _write_parquet(out_dir, DATA_DIR, final, shard_rows)
    result = ExportResult(name, out_dir, {s: len(r) for s, r in final.items()})

    finetune_files: dict[str, str] = {}
    if store_format(task_dir, FORMATTED):
        formatted = _splits(task_dir, FORMATTED, split)
        finetune_files = _write_parquet(out_dir, FINETUNE_DIR, formatted, shard_rows)
        result.finetune_rows = {s: len(r) for s, r in formatted.items()}
        task = formatter_training_task(card)
        if task is not None:
            fields = {k for rows in final.values() for r in rows[:1000] for k in r}
            result.training = training_config(task, formatted, finetune_files, counter, fields)
            result.warnings.extend(result.training["warnings"])
            (out_dir / TRAINING_CONFIG).write_text(
                json.dumps(result.training, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
    report = _report(task_dir, name, report_sample, [r for rows in final.values() for r in rows])
    text = dataset_card(card, report, result, data_files, finetune_files, license=license)
    (out_dir / CARD).write_text(text, encoding="utf-8")
    result.seconds = time.perf_counter() - started
    return result
