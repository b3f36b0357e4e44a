"""The report as one self-contained HTML file: ``python -m fms_dgt.report OUTPUT_DIR --html FILE``.

One file someone can open from a mail or a shared drive, offline: plotly.js is inlined from
the plotly package, the CSS is in the page, and nothing refers to the network. Per task it
holds the report's figures as tables (the same numbers as the text report), the charts the
live viewer draws (``fms_dgt.view.charts``), and a sample of records: kept, rejected with
block and reason, failed with the error, and the seed examples. Records are rendered through
Jinja's autoescaping (a record holding ``<script>`` shows as text); a chat-shaped record (a
``messages`` list of role/content turns) is shown as a conversation.

The samples are uniform reservoir samples drawn while streaming each store, so a task with a
million records costs one pass per store and a fixed amount of memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fms_dgt.datapoint import BASE_FIELDS
from fms_dgt.report import read_store, reservoir, store_format
from fms_dgt.view.charts import chart_div, plotly_js_path, seed_examples, task_charts

TEMPLATES = Path(__file__).parent / "templates"
SAMPLE_KEPT, SAMPLE_REJECTED, SAMPLE_FAILED, SAMPLE_SEEDS = 12, 8, 5, 5
MAX_VALUE_CHARS = 4000  # a longer field is cut in the page (the store keeps it whole)


@dataclass
class RecordView:
    """One record as the page shows it: a conversation and/or fields, and its lineage."""

    id: str
    messages: list[dict[str, str]] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)
    lineage: str = ""
    note: str = ""  # block and reason of a rejection, error of a failure


def record_view(record: dict[str, Any], note: str = "") -> RecordView:
    """How ``record`` is shown; ``messages`` of role/content dicts become a conversation."""
    view = RecordView(id=str(record.get("id", "")), note=note)
    messages = record.get("messages")
    turns: list[dict[str, Any]] = messages if isinstance(messages, list) else []
    chat = bool(turns) and all(isinstance(m, dict) and "role" in m for m in turns)
    for key, value in record.items():
        if key in BASE_FIELDS or (chat and key == "messages"):
            continue
        view.fields.append((key, _cut(value if isinstance(value, str) else _json(value))))
    if chat:
        view.messages = [
            {"role": str(m.get("role")), "content": _cut(_text(m.get("content")))} for m in turns
        ]
    lineage = record.get("lineage")
    if lineage:
        view.lineage = _cut(_json(lineage))
    return view


def _inner(row: dict[str, Any]) -> dict[str, Any]:
    """The record a rejection row holds."""
    record = row.get("record")
    return record if isinstance(record, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


def _cut(text: str) -> str:
    if len(text) <= MAX_VALUE_CHARS:
        return text
    return text[:MAX_VALUE_CHARS] + f" … [{len(text) - MAX_VALUE_CHARS} more characters in the store]"


def task_section(task_dir: Path, report: dict[str, Any], index: int) -> dict[str, Any]:
    """What the template needs for one task: its figures, charts and record samples."""
    kept_store = "final_data" if store_format(task_dir, "final_data") else "data"
    kept, n_kept = reservoir(read_store(task_dir, kept_store), SAMPLE_KEPT)
    rejected, n_rejected = reservoir(read_store(task_dir, "rejected"), SAMPLE_REJECTED)
    failed, n_failed = reservoir(read_store(task_dir, "failed"), SAMPLE_FAILED)
    seeds = seed_examples(task_dir)
    charts = task_charts(task_dir)
    return {
        "anchor": f"task-{index}",
        "report": report,
        "charts": [chart_div(c, f"chart-{index}-{i}") for i, c in enumerate(charts)],
        "kept_store": kept_store,
        "kept": [record_view(r) for r in kept],
        "kept_total": n_kept,
        "rejected": [
            record_view(
                _inner(r),
                f"{r.get('block')} ({r.get('stage', 'generation')}): {r.get('reason')}",
            )
            for r in rejected
        ],
        "rejected_total": n_rejected,
        "failed": [
            record_view(
                {k: v for k, v in r.items() if k not in ("stage", "error")},
                f"{r.get('stage')}: {r.get('error')}",
            )
            for r in failed
        ],
        "failed_total": n_failed,
        "seeds": [record_view(s) for s in seeds[:SAMPLE_SEEDS]],
        "seeds_total": len(seeds),
    }


def render_html(output_dir: Path, tasks: Sequence[tuple[Path, dict[str, Any]]]) -> str:
    """The whole page for ``tasks`` (task folder, ``task_report`` figures)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    # inlined in a <script>: a "</script" in the library's text would end it early
    plotly_js = plotly_js_path().read_text(encoding="utf-8").replace("</script", "<\\/script")
    return env.get_template("static_report.html.j2").render(
        output_dir=str(output_dir),
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tasks=[task_section(d, r, i) for i, (d, r) in enumerate(tasks)],
        plotly_js=plotly_js,
    )


def _num(value: Any) -> str:
    """A count with thousands separators; nothing for a missing one."""
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def check_writable(path: Path) -> str | None:
    """Why ``path`` cannot be written (None if it can), said before any work is done."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return f"'{path}' is a folder; give a file name such as {path / 'report.html'}"
    if not parent.is_dir():
        return f"folder '{parent}' does not exist"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"'{path}' is not writable"
    return None


def write_html(path: Path, text: str) -> None:
    """Write atomically (temp file + rename): a reader never sees half a report."""
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
