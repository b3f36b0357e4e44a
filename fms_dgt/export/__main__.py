"""``python -m fms_dgt.export <task output folder> <export folder>`` (also ``dgt export``).

Exit status: 0; 1 when the upload fails; 2 bad input (not a task output folder, a target
folder holding something else, a bad option), with one message and no traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fms_dgt.export",
        description="Export a task's output as a Hugging Face dataset folder (parquet + dataset card).",
        epilog="Docs: docs/export.md",
    )
    p.add_argument("task_dir", help="the task's output folder, e.g. output/<task_name>")
    p.add_argument("out_dir", help="the dataset folder to write (new, or an earlier export)")
    p.add_argument("--license", default="other", help="the card's license (a Hub license id; default: other)")
    p.add_argument("--shard-rows", type=int, default=100_000, metavar="N", help="rows per parquet file")
    p.add_argument(
        "--tokenizer",
        metavar="PATH",
        help="tokenizer.json (or a folder holding one) for max_seq_length; default: an estimate",
    )
    p.add_argument("--push-to-hub", metavar="REPO", help="also upload the folder to this Hub dataset repo")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fms_dgt.export.folder import ExportError, export_task

    try:
        result = export_task(
            Path(args.task_dir),
            Path(args.out_dir),
            license=args.license,
            shard_rows=args.shard_rows,
            tokenizer=args.tokenizer,
        )
    except (ExportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = ", ".join(f"{s} {n}" for s, n in result.rows.items())
    print(f"exported {result.task_name} to {result.out_dir} ({rows}) in {result.seconds:.1f}s")
    if result.finetune_rows:
        print("fine-tuning rows: " + ", ".join(f"{s} {n}" for s, n in result.finetune_rows.items()))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.push_to_hub:
        from fms_dgt.export.hub import push_to_hub

        try:
            url = push_to_hub(result.out_dir, args.push_to_hub, private=args.private)
        except Exception as exc:  # network, auth, a missing package: the export itself stands
            print(f"error: upload to {args.push_to_hub} failed: {exc}", file=sys.stderr)
            return 1
        print(f"uploaded to {url}")
    return 0


if __name__ == "__main__":
    from fms_dgt.console import run_cli

    sys.exit(run_cli(main))
