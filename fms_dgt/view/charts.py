"""The report's figures as charts, shared by the static HTML report and the live viewer.

``task_charts(task_dir)`` reads one task's output folder and returns plotly figures (plain
JSON-able dicts: ``data`` + ``layout``) for: the length of the kept records (seeds beside
them when the task card holds seed examples), their diversity, the rejection and dedup rates
along the run, rejections by block and reason, and failures by error.

Every store is read once, streaming, and what is kept is bounded whatever the size of the
task: lengths are counted per value (and coarsened if there are too many distinct values),
diversity is measured on a uniform reservoir sample, and the run's timeline is a fixed number
of bins (``fms_dgt/view/timeline.py``: the stores carry no timestamps, so the timeline runs
along the builder call index, or the input row of a transformation, and says so).

``chart_div`` renders one chart as an HTML fragment (a div and a script calling
``Plotly.newPlot``); ``plotly_js_path`` is the plotly.js file shipped inside the plotly
package, so pages never load anything from the network.
"""

from __future__ import annotations

import html
import importlib.util
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fms_dgt.datastores.base import read_json
from fms_dgt.ledger import reason_kind
from fms_dgt.metrics.diversity import distinct_n, self_similarity
from fms_dgt.report import read_store, record_text, store_format
from fms_dgt.view.timeline import Timeline

# bounds on what a chart keeps in memory, whatever the number of records
DIVERSITY_SAMPLE = 5000  # texts kept (reservoir) for distinct-n
ROUGE_SAMPLE = 150  # texts compared pairwise by ROUGE-L (11k pairs)
JACCARD_SAMPLE = 600  # texts compared pairwise by MinHash Jaccard
LENGTH_BINS = 40
MAX_DISTINCT_LENGTHS = 20000  # lengths counted exactly up to this many distinct values

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
    """The charts of one task output folder (an empty list if it holds no records)."""
    task_dir = Path(task_dir)
    kept_store = "final_data" if store_format(task_dir, "final_data") else "data"
    kept = _TextStats()
    for record in read_store(task_dir, kept_store):
        if not record.get("is_seed"):
            kept.add(record_text(record))
    seeds = _TextStats()
    for seed in seed_examples(task_dir):
        seeds.add(record_text(seed))

    timeline = Timeline()
    for record in read_store(task_dir, "data"):
        timeline.accepted(record)
    by_block: dict[str, Counter[str]] = defaultdict(Counter)
    for row in read_store(task_dir, "rejected"):
        block, kind = str(row.get("block")), reason_kind(str(row.get("reason", "")))
        by_block[block][kind] += 1
        timeline.rejected(row, kind)
    failed: Counter[tuple[str, str]] = Counter()
    for row in read_store(task_dir, "failed"):
        failed[(str(row.get("stage")), reason_kind(str(row.get("error") or "unknown")))] += 1

    charts = [
        c
        for c in (
            length_chart(kept, seeds, kept_store),
            diversity_chart(kept, seeds, kept_store),
            timeline_chart(timeline),
            rejections_chart(by_block),
            failures_chart(failed),
        )
        if c is not None
    ]
    return charts


def seed_examples(task_dir: Path) -> list[dict[str, Any]]:
    """The task's inline seed examples, as its task card recorded them (a seed datastore
    outside the output folder is not read)."""
    card = read_json(task_dir / "task_card.json") or {}
    config = card.get("task_config") if isinstance(card, dict) else None
    seeds = config.get("seed_examples") if isinstance(config, dict) else None
    return [s for s in seeds if isinstance(s, dict)] if isinstance(seeds, list) else []


class _TextStats:
    """Lengths (counted per value) and a reservoir sample of the texts of one set of records."""

    def __init__(self, seed: int = 0) -> None:
        self.n = 0
        self.lengths: Counter[int] = Counter()
        self.quantum = 1  # lengths are counted in multiples of this (grows past MAX_DISTINCT_LENGTHS)
        self.sample: list[str] = []
        self._rng = random.Random(seed)

    def add(self, text: str) -> None:
        self.n += 1
        self.lengths[len(text) // self.quantum * self.quantum] += 1
        if len(self.lengths) > MAX_DISTINCT_LENGTHS:
            self.quantum *= 2
            coarse: Counter[int] = Counter()
            for length, count in self.lengths.items():
                coarse[length // self.quantum * self.quantum] += count
            self.lengths = coarse
        if len(self.sample) < DIVERSITY_SAMPLE:
            self.sample.append(text)
        else:
            j = self._rng.randrange(self.n)
            if j < DIVERSITY_SAMPLE:
                self.sample[j] = text

    def diversity(self) -> dict[str, float | None]:
        texts = self.sample
        return {
            "distinct-1": distinct_n(texts, 1) if texts else None,
            "distinct-2": distinct_n(texts, 2) if texts else None,
            "self-similarity ROUGE-L": self_similarity(texts, "rouge_l", max_texts=ROUGE_SAMPLE),
            "self-similarity Jaccard": self_similarity(texts, "jaccard", max_texts=JACCARD_SAMPLE),
        }


def length_chart(kept: _TextStats, seeds: _TextStats, store: str) -> Chart | None:
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


def diversity_chart(kept: _TextStats, seeds: _TextStats, store: str) -> Chart | None:
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
