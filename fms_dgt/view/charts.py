"""The report's figures as charts, shared by the static HTML report and the live viewer.

``task_charts(task_dir)`` reads one task's output folder and returns plotly figures (plain
JSON-able dicts: ``data`` + ``layout``) for: the length of the kept records (seeds beside
them when the task card holds seed examples), their diversity, the rejection and dedup rates
along the run, rejections by block and reason, and failures by error.

Reading is streaming and bounded whatever the size of the task, and incremental: a task's
``TaskScan`` (``fms_dgt/view/scan.py``) keeps counts per length value, a reservoir sample of
texts, fixed timeline bins and counts per block and reason, and a later call reads only what
the stores gained since. The stores carry no timestamps, so the timeline runs along the
builder call index, or the input row of a transformation, and says so
(``fms_dgt/view/timeline.py``).

``chart_div`` renders one chart as an HTML fragment (a div and a script calling
``Plotly.newPlot``); ``plotly_js_path`` is the plotly.js file shipped inside the plotly
package, so pages never load anything from the network.
"""

from __future__ import annotations

import html
import importlib.util
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fms_dgt.datastores.base import read_json
from fms_dgt.report import record_text
from fms_dgt.view.scan import DIVERSITY_SAMPLE, JACCARD_SAMPLE, ROUGE_SAMPLE, TextStats, scan_of
from fms_dgt.view.timeline import Timeline

LENGTH_BINS = 40

PLOT_CONFIG = {"displaylogo": False, "responsive": True, "showLink": False, "showSendToCloud": False}


@dataclass
class Chart:
    """One figure: its title and a plotly figure (``data`` + ``layout``) as a JSON-able dict."""

    title: str
    figure: dict[str, Any]


def plotly_js_path() -> Path:
    """The minified plotly.js inside the installed plotly package (served or inlined locally;
    never a CDN)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise ImportError("charts need plotly: pip install 'fms_dgt[view]'")
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly is installed but ships no {path}; reinstall plotly")
    return path


def chart_div(chart: Chart, div_id: str) -> str:
    """An HTML fragment drawing ``chart`` into a div ``div_id`` (plotly.js must be loaded).

    The figure's JSON is written with ``<``, ``>`` and ``&`` as ``\\u`` escapes, so a record's
    text in the data (``</script>`` included) cannot end the script or open a tag. The chart
    is drawn once the page is parsed, when the div has its final width in the page's layout.
    """
    payload = _script_json({"data": chart.figure.get("data", []), "layout": chart.figure.get("layout", {})})
    draw = f"Plotly.newPlot({_script_json(div_id)},f.data,f.layout,{_script_json(PLOT_CONFIG)});"
    return (
        f'<div class="dgt-chart" id="{html.escape(div_id, quote=True)}" '
        f'data-title="{html.escape(chart.title, quote=True)}"></div>\n'
        f"<script>(function(){{var f={payload};function draw(){{{draw}}}"
        "if(document.readyState==='loading'){document.addEventListener('DOMContentLoaded',draw);}"
        "else{draw();}})();</script>"
    )


def _script_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def task_charts(task_dir: Path) -> list[Chart]:
    """The charts of one task output folder (an empty list if it holds no records).

    The folder's stores are read through its ``TaskScan`` (``fms_dgt/view/scan.py``): the
    first call reads them, later calls only what was appended since, so a viewer can ask
    again while the run goes on."""
    scan = scan_of(Path(task_dir))
    seeds = TextStats()
    for seed in seed_examples(Path(task_dir)):
        seeds.add(record_text(seed))
    with scan.lock:
        scan.update()
        charts = [
            length_chart(scan.kept, seeds, scan.kept_store),
            diversity_chart(scan.kept, seeds, scan.kept_store),
            timeline_chart(scan.timeline),
            rejections_chart(scan.by_block),
            failures_chart(scan.failed),
        ]
    return [c for c in charts if c is not None]


def seed_examples(task_dir: Path) -> list[dict[str, Any]]:
    """The task's inline seed examples, as its task card recorded them (a seed datastore
    outside the output folder is not read)."""
    card = read_json(task_dir / "task_card.json") or {}
    config = card.get("task_config") if isinstance(card, dict) else None
    seeds = config.get("seed_examples") if isinstance(config, dict) else None
    return [s for s in seeds if isinstance(s, dict)] if isinstance(seeds, list) else []


def length_chart(kept: TextStats, seeds: TextStats, store: str) -> Chart | None:
    if not kept.n:
        return None
    sets = [("synthetic", kept)] + ([("seeds", seeds)] if seeds.n else [])
    top = max(max(s.lengths) for _, s in sets) + max(kept.quantum, seeds.quantum)
    width = max(1, -(-top // LENGTH_BINS))
    traces = []
    for name, stats in sets:
        counts = [0] * (-(-top // width) + 1)
        for length, count in stats.lengths.items():
            counts[length // width] += count
        y = [100 * c / stats.n for c in counts] if seeds.n else counts
        traces.append(
            {
                "type": "bar",
                "name": f"{name} ({stats.n})",
                "x": [i * width + width / 2 for i in range(len(counts))],
                "y": y,
                "customdata": counts,
                "hovertemplate": f"{name}: %{{customdata}} records of length "
                f"%{{x}} ± {width / 2:g} chars<extra></extra>",
                "width": width,
                "opacity": 0.7 if seeds.n else 1.0,
            }
        )
    title = f"Length of kept records ({store}, characters of text)"
    if seeds.n:
        title += ": synthetic vs seeds"
    return Chart(
        title,
        _figure(
            traces,
            title,
            x=f"characters (bins of {width})",
            y="% of each set" if seeds.n else "records",
            barmode="overlay",
        ),
    )


def diversity_chart(kept: TextStats, seeds: TextStats, store: str) -> Chart | None:
    if kept.n < 2:
        return None
    sets = [("synthetic", kept)] + ([("seeds", seeds)] if seeds.n >= 2 else [])
    traces = []
    for name, stats in sets:
        figures = stats.diversity()
        names = [k for k, v in figures.items() if v is not None]
        traces.append(
            {
                "type": "bar",
                "name": f"{name} ({min(stats.n, DIVERSITY_SAMPLE)} of {stats.n} records)",
                "x": names,
                "y": [round(float(figures[k] or 0.0), 4) for k in names],
                "hovertemplate": f"{name} %{{x}}: %{{y}}<extra></extra>",
            }
        )
    title = (
        f"Diversity of kept records ({store}; distinct-n: higher is more varied; self-similarity: "
        f"lower is more varied, over pairs of ≤{ROUGE_SAMPLE} / ≤{JACCARD_SAMPLE} sampled records)"
    )
    fig = _figure(traces, title, x="", y="score (0-1)", barmode="group")
    fig["layout"]["yaxis"]["range"] = [0, 1]
    return Chart(title, fig)


def timeline_chart(timeline: Timeline) -> Chart | None:
    """Rejection and dedup rates along the run (``fms_dgt/view/timeline.py`` says which axis)."""
    rates = timeline.rates()
    if rates is None:
        return None
    if rates.unit == "rejected record":
        title = (
            f"Duplicates among rejections, in the order they were written (batches of {rates.width}; "
            "the records carry no timestamps or call index)"
        )
        x_title, y_title = "rejected records written before", "% of rejections"
    else:
        title = (
            f"Rejection and dedup rates along the run, by {rates.axis} in bins of {rates.width} "
            f"{rates.unit}s (generation stage; the stores carry no timestamps)"
        )
        x_title, y_title = f"{rates.axis} (start of bin)", "% of records offered"
    traces = [_line(rates.x, y, name, rates.hover) for name, y in rates.series.items()]
    fig = _figure(traces, title, x=x_title, y=y_title)
    fig["layout"]["yaxis"]["rangemode"] = "tozero"
    return Chart(title, fig)


def rejections_chart(by_block: dict[str, Counter[str]]) -> Chart | None:
    if not by_block:
        return None
    blocks = sorted(by_block, key=lambda b: sum(by_block[b].values()))
    reasons: Counter[str] = Counter()
    for c in by_block.values():
        reasons.update(c)
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "name": reason,
            "y": blocks,
            "x": [by_block[b].get(reason, 0) for b in blocks],
            "hovertemplate": f"%{{y}}: %{{x}} × {reason}<extra></extra>",
        }
        for reason, _ in reasons.most_common()
    ]
    total = sum(reasons.values())
    title = f"Rejections by block and reason ({total} records)"
    fig = _figure(traces, title, x="records", y="block", barmode="stack")
    fig["layout"]["height"] = max(300, 120 + 40 * len(blocks))
    return Chart(title, fig)


def failures_chart(failed: Counter[tuple[str, str]]) -> Chart | None:
    if not failed:
        return None
    stages = sorted({s for s, _ in failed})
    errors = Counter[str]()
    for (_, e), n in failed.items():
        errors[e] += n
    traces = [
        {
            "type": "bar",
            "name": error,
            "x": stages,
            "y": [failed.get((s, error), 0) for s in stages],
            "hovertemplate": f"%{{x}}: %{{y}} × {error}<extra></extra>",
        }
        for error, _ in errors.most_common(10)
    ]
    title = f"Failed requests and calls by stage and error ({sum(failed.values())} records)"
    return Chart(title, _figure(traces, title, x="stage", y="records", barmode="stack"))


def _line(x: list[int], y: list[float], name: str, hover: list[str]) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": name,
        "x": x,
        "y": y,
        "text": hover,
        "hovertemplate": "%{y}% at %{x}: %{text}<extra></extra>",
    }


def _figure(
    traces: list[dict[str, Any]], title: str, x: str, y: str, barmode: str | None = None
) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": _wrap(title), "font": {"size": 14}},
        "xaxis": {"title": {"text": x}, "automargin": True},
        "yaxis": {"title": {"text": y}, "automargin": True},
        "margin": {"t": 70, "l": 60, "r": 20, "b": 50},
        "height": 360,
        "legend": {"orientation": "h", "y": -0.25},
    }
    if barmode:
        layout["barmode"] = barmode
    return {"data": traces, "layout": layout}


def _wrap(title: str, width: int = 90) -> str:
    """Plotly titles do not wrap: break long ones with <br> at word boundaries."""
    lines: list[str] = []
    for word in title.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(html.escape(line, quote=False) for line in lines)
