"""Data-quality report of a run: ``python -m fms_dgt.report <output_dir> [--json FILE] [--html FILE]``.

For every task folder under ``<output_dir>`` it reads the stores the run wrote (``data``,
``final_data``, ``rejected``, ``failed``, jsonl or parquet) and ``task_results.json``, and
prints: records accepted and kept, rejections by block and reason, failed requests, diversity
of the kept records (distinct-1/2 and self-similarity over a sample), tokens, and with
``--reference FIELD:REFERENCE`` (repeatable) the reference metrics of a field against another
field of the same records (ROUGE-1/2/L, exact match, token F1; ``metrics/reference.py``). The
rejection and failure counts come from the stores, not from the run's counters, so they
cover every run of a resumed task. ``--json`` writes the same figures as one JSON document;
``--html`` one self-contained HTML page with them, the viewer's charts and a sample of
records (``fms_dgt/view/static_report.py``).

Exit status: 0, or 2 when the folder does not exist or holds no task output, when a
``--reference`` is malformed or names fields no record has, or when the ``--html`` file
cannot be written.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from fms_dgt.datapoint import BASE_FIELDS
from fms_dgt.datastores.base import read_json
from fms_dgt.datastores.roles import DATA, FAILED, FINAL, REJECTED
from fms_dgt.ledger import reason_kind
from fms_dgt.metrics.diversity import distinct_n, self_similarity
from fms_dgt.metrics.reference import parse_spec, reference_metrics
from fms_dgt.metrics.reference import render as render_reference
from fms_dgt.registry import did_you_mean

STORES = (DATA, FINAL, REJECTED, FAILED)
# diversity is measured on at most this many kept records (a uniform sample beyond), so the
# report of a task with millions of records holds a bounded number of texts
DIVERSITY_MAX_RECORDS = 20_000

T = TypeVar("T")


def reservoir(items: Iterable[T], k: int, seed: int = 0) -> tuple[list[T], int]:
    """A uniform sample of ``k`` of ``items`` (all of them, in order, if there are no more),
    drawn in one pass with ``k`` items in memory; and how many items there were."""
    rng = random.Random(seed)
    kept: list[tuple[int, T]] = []
    n = 0
    for n, item in enumerate(items, 1):
        if len(kept) < k:
            kept.append((n, item))
        else:
            j = rng.randrange(n)
            if j < k:
                kept[j] = (n, item)
    return [item for _, item in sorted(kept, key=lambda t: t[0])], n


def store_format(task_dir: Path, store: str) -> str | None:
    """``jsonl`` or ``parquet`` if ``task_dir`` holds ``store`` in that format, else None."""
    if (task_dir / f"{store}.jsonl").is_file():
        return "jsonl"
    if (task_dir / f"{store}.parquet").is_dir():
        return "parquet"
    return None


def read_store(task_dir: Path, store: str) -> Iterator[dict[str, Any]]:
    """Stream the records of one store (nothing if it is absent)."""
    fmt = store_format(task_dir, store)
    if fmt is None:
        return iter(())
    from fms_dgt.datastores.files import FileDatastore

    ds = FileDatastore(
        store_name=store, output_dir=task_dir.parent, task_name=task_dir.name, output_data_format=fmt
    )
    return ds.load_data()


def task_dirs(output_dir: Path) -> list[Path]:
    """Folders under ``output_dir`` that hold a task's output (results or any record store),
    at any depth: a task named ``core/simple/causal`` writes to ``output/core/simple/causal``.
    A task folder is not searched further (tasks never nest)."""
    found: list[Path] = []
    for d in sorted(output_dir.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        if is_task_dir(d):
            found.append(d)
        else:
            found.extend(task_dirs(d))
    return found


def task_name_of(task_dir: Path, output_dir: Path) -> str:
    """The full task name of a task folder (what its results say, else its path)."""
    results = read_json(task_dir / "task_results.json") or {}
    if isinstance(results.get("task_name"), str):
        return str(results["task_name"])
    try:
        return task_dir.relative_to(output_dir).as_posix() if task_dir != output_dir else task_dir.name
    except ValueError:
        return task_dir.name


def is_task_dir(d: Path) -> bool:
    return d.is_dir() and ((d / "task_results.json").is_file() or any(store_format(d, s) for s in STORES))


def record_text(record: dict[str, Any], fields: Sequence[str] | None = None) -> str:
    """The text of a record for diversity and length: the given fields, or every user string
    field and the contents of a chat record's ``messages``."""
    if fields:
        return "\n".join(str(record[f]) for f in fields if record.get(f) is not None)
    parts = [v for k, v in record.items() if k not in BASE_FIELDS and isinstance(v, str)]
    messages = record.get("messages")
    if isinstance(messages, list):
        parts += [m["content"] for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return "\n".join(parts)


def task_report(
    task_dir: Path,
    fields: Sequence[str] | None = None,
    sample: int = 300,
    name: str | None = None,
    references: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """All figures for one task folder; ``references``: (field, reference field) pairs scored
    on the kept records."""
    results = read_json(task_dir / "task_results.json") or {}
    accepted = sum(1 for _ in read_store(task_dir, "data"))
    final_kind = "final_data" if store_format(task_dir, "final_data") else "data"
    texts, kept = reservoir(
        (record_text(r, fields) for r in read_store(task_dir, final_kind)), DIVERSITY_MAX_RECORDS
    )

    by_block: dict[str, Counter[str]] = defaultdict(Counter)
    by_stage: Counter[str] = Counter()
    for row in read_store(task_dir, "rejected"):
        by_block[str(row.get("block"))][reason_kind(row.get("reason", ""))] += 1
        by_stage[str(row.get("stage", "generation"))] += 1

    failed_stage: Counter[str] = Counter()
    failed_errors: Counter[str] = Counter()
    for row in read_store(task_dir, "failed"):
        failed_stage[str(row.get("stage"))] += 1
        failed_errors[reason_kind(str(row.get("error") or "unknown"))] += 1

    tokens = dict(results.get("tokens") or {})
    if tokens:
        tokens["total"] = int(tokens.get("prompt", 0)) + int(tokens.get("completion", 0))
    return {
        "task": name or task_name_of(task_dir, task_dir.parent),
        "status": results.get("status"),
        "target": results.get("target"),
        "accepted": accepted,
        "final": kept if final_kind == "final_data" else None,
        "rejected": {
            "total": sum(by_stage.values()),
            "by_stage": dict(by_stage),
            "by_block": {
                b: {"total": sum(c.values()), "reasons": dict(c.most_common())} for b, c in by_block.items()
            },
        },
        "failed": {
            "total": sum(failed_stage.values()),
            "by_stage": dict(failed_stage),
            "errors": dict(failed_errors.most_common(10)),
        },
        "diversity": {
            "records": len(texts),
            "source": final_kind
            if kept == len(texts)
            else f"a uniform sample of {kept:,} {final_kind} records",
            "distinct_1": round(distinct_n(texts, 1), 4),
            "distinct_2": round(distinct_n(texts, 2), 4),
            "self_similarity_rouge_l": _round(self_similarity(texts, "rouge_l", max_texts=sample)),
            "self_similarity_jaccard": _round(self_similarity(texts, "jaccard", max_texts=sample * 3)),
        },
        "reference": [reference_metrics(read_store(task_dir, final_kind), f, ref) for f, ref in references],
        "tokens": tokens,
        "requests": results.get("requests"),
        "cost_usd": results.get("cost_usd"),
        "engines": results.get("engines") or {},
        "elapsed_seconds": results.get("elapsed_seconds"),
    }


def _missing_fields(dirs: Sequence[tuple[Path, str]], field: str, ref: str) -> str:
    """Why no record could be scored: which name no record has, with a did-you-mean."""
    seen: set[str] = set()
    for d, _ in dirs:
        store = "final_data" if store_format(d, "final_data") else "data"
        for i, record in enumerate(read_store(d, store)):
            seen.update(k for k in record if k not in BASE_FIELDS)
            if i >= 50:
                break
    absent = [name for name in (field, ref) if name.split(".")[0] not in seen]
    if not absent:
        return "no record has both fields as text"
    hints = [
        f"no record has a field '{name}'" + (f" ({h})" if (h := did_you_mean(name, seen)) else "")
        for name in absent
    ]
    return "; ".join(hints) + (f"; record fields: {', '.join(sorted(seen))}" if seen else "")


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def render(reports: list[dict[str, Any]]) -> str:
    """Human-readable text of ``reports``."""
    lines: list[str] = []
    for r in reports:
        target = f" / target {r['target']}" if r.get("target") is not None else ""
        final = f", {r['final']} in final_data" if r.get("final") is not None else ""
        lines.append(f"== {r['task']} ({r.get('status') or 'no task_results'})")
        lines.append(f"  accepted     {r['accepted']}{final}{target}")
        rej = r["rejected"]
        stages = ", ".join(f"{k} {v}" for k, v in rej["by_stage"].items())
        lines.append(f"  rejected     {rej['total']}" + (f" ({stages})" if stages else ""))
        for block, info in sorted(rej["by_block"].items(), key=lambda kv: -kv[1]["total"]):
            lines.append(f"    {block:<20} {info['total']:>7}")
            for reason, n in info["reasons"].items():
                lines.append(f"      {n:>7}  {reason}")
        fail = r["failed"]
        lines.append(f"  failed       {fail['total']}")
        for error, n in fail["errors"].items():
            lines.append(f"      {n:>7}  {error}")
        d = r["diversity"]
        lines.append(
            f"  diversity    {d['records']} records of {d['source']}: distinct-1 {d['distinct_1']}, "
            f"distinct-2 {d['distinct_2']}, self-similarity ROUGE-L {d['self_similarity_rouge_l']}, "
            f"Jaccard {d['self_similarity_jaccard']}"
        )
        for ref in r.get("reference", []):
            lines.append(f"  reference    {render_reference(ref)}")
        tok = r["tokens"]
        if tok:
            lines.append(
                f"  tokens       prompt {tok.get('prompt', 0)}, completion {tok.get('completion', 0)}, "
                f"total {tok.get('total', 0)}"
                + (f" in {r['requests']} requests" if r.get("requests") else "")
            )
        else:
            lines.append("  tokens       (no task_results.json)")
        if r.get("cost_usd") is not None:
            per_engine = ", ".join(
                f"{name} ${e.get('cost_usd', 0):.4f}"
                for name, e in r["engines"].items()
                if isinstance(e, dict)
            )
            lines.append(f"  cost         ${r['cost_usd']:.4f}" + (f" ({per_engine})" if per_engine else ""))
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fms_dgt.report",
        description="Data-quality report of the tasks under an output directory.",
    )
    parser.add_argument("output_dir", help="the run's output directory (holds one folder per task)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON ('-': stdout only)")
    parser.add_argument(
        "--html",
        metavar="FILE",
        help="also write one self-contained HTML file: these figures as tables, the viewer's charts "
        "and a sample of records (works offline)",
    )
    parser.add_argument("--task", action="append", help="only this task (repeatable)")
    parser.add_argument("--fields", nargs="+", help="record fields used for diversity (default: all text)")
    parser.add_argument("--sample", type=int, default=300, help="records sampled for self-similarity")
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="FIELD:REFERENCE",
        help="score FIELD against REFERENCE (another field of the same records): ROUGE-1/2/L, "
        "exact match, token F1 (repeatable; dotted names reach nested fields)",
    )
    args = parser.parse_args(argv)
    try:
        references = [parse_spec(spec) for spec in args.reference]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.html and (why := _html_unwritable(Path(args.html))):
        print(f"error: --html {args.html}: {why}", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    if not out.is_dir():
        print(f"error: output directory '{out}' does not exist", file=sys.stderr)
        return 2
    named = [(d, task_name_of(d, out)) for d in task_dirs(out)]
    dirs = [(d, n) for d, n in named if not args.task or n in args.task]
    if not dirs and not args.task and is_task_dir(out):
        dirs = [(out, task_name_of(out, out.parent))]  # one task's folder, not the output directory
    if not dirs:
        what = f"tasks {', '.join(args.task)}" if args.task else "task output"
        print(
            f"error: no {what} under '{out}' (expected <output_dir>/<task_name>/data.jsonl ...)",
            file=sys.stderr,
        )
        return 2
    reports = [task_report(d, args.fields, args.sample, name, references) for d, name in dirs]
    for i, (field, ref) in enumerate(references):
        if not any(r["reference"][i]["scored"] for r in reports):
            print(f"error: --reference {field}:{ref}: {_missing_fields(dirs, field, ref)}", file=sys.stderr)
            return 2
    doc = {"output_dir": str(out), "tasks": reports}
    if args.json == "-":
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(render(reports), end="")
    if args.json and args.json != "-":
        Path(args.json).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.html:
        return _write_html(Path(args.html), out, [(d, r) for (d, _), r in zip(dirs, reports)])
    return 0


def _html_unwritable(path: Path) -> str | None:
    from fms_dgt.view.static_report import check_writable

    return check_writable(path)


def _write_html(path: Path, out: Path, tasks: list[tuple[Path, dict[str, Any]]]) -> int:
    """The HTML report (``fms_dgt/view/static_report.py``); 2 if it cannot be written."""
    from fms_dgt.view.static_report import render_html, write_html

    try:
        write_html(path, render_html(out, tasks))
    except OSError as exc:
        print(f"error: --html {path}: cannot write it: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"error: --html {path}: {exc}", file=sys.stderr)
        return 2
    print(f"HTML report written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from fms_dgt.console import run_cli

    sys.exit(run_cli(main))
