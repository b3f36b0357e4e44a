"""``fms_dgt.view.charts`` on hand-made task folders: the values drawn, not only their presence,
the escaping of ``chart_div``, and the bound on memory and time for a large store."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from fms_dgt.view.charts import Chart, chart_div, plotly_js_path, task_charts


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def record(i: int, text: str, idx: int | None = None) -> dict[str, Any]:
    lineage = {"request_idx": idx if idx is not None else i}
    return {"task_name": "t", "is_seed": False, "id": f"r{i}", "lineage": lineage, "question": text}


def rejected(i: int, block: str, reason: str, idx: int, stage: str = "generation") -> dict[str, Any]:
    return {"record": record(i, f"rejected {i}", idx), "block": block, "reason": reason, "stage": stage}


def by_title(charts: list[Chart], start: str) -> Chart:
    found = [c for c in charts if c.title.startswith(start)]
    assert len(found) == 1, [c.title for c in charts]
    return found[0]


@pytest.fixture
def task(tmp_path: Path) -> Path:
    """20 accepted records (calls 0-19, question lengths 10 and 30), 10 rejections at calls
    20-29: 6 exact duplicates by ``dedup``, 3 ``too short`` and 1 postprocessing rejection by
    ``length``; 2 seed examples of length 5 in the task card; 1 failed engine request."""
    d = tmp_path / "out" / "t"
    rows = [record(i, "x" * (10 if i % 2 else 30)) for i in range(20)]
    write_jsonl(d / "data.jsonl", rows)
    rej = [rejected(100 + i, "dedup", "exact duplicate", 20 + i) for i in range(6)]
    rej += [rejected(200 + i, "length", f"too short: {i} < 20 chars", 26 + i) for i in range(3)]
    rej += [rejected(300, "length", "too short: 1 < 20 chars", 29, stage="postprocessing")]
    write_jsonl(d / "rejected.jsonl", rej)
    write_jsonl(d / "failed.jsonl", [{"stage": "engine", "error": "timeout: 300 s", "request": {}}])
    seeds = [{"question": "aaaaa"}, {"question": "bbbbb"}]
    (d / "task_card.json").write_text(json.dumps({"task_config": {"seed_examples": seeds}}))
    return d


def test_length_chart_counts_kept_and_seeds(task: Path) -> None:
    chart = by_title(task_charts(task), "Length of kept records")
    assert "seeds" in chart.title
    synthetic, seeds = chart.figure["data"]
    assert synthetic["name"] == "synthetic (20)" and seeds["name"] == "seeds (2)"
    # counts per bin: 10 records of length 10, 10 of length 30, 2 seeds of length 5
    width = synthetic["width"]
    counts = {int(x - width / 2): n for x, n in zip(synthetic["x"], synthetic["customdata"]) if n}
    assert counts == {10 // width * width: 10, 30 // width * width: 10}
    assert sum(seeds["customdata"]) == 2 and seeds["customdata"][5 // width] == 2
    assert sum(synthetic["y"]) == pytest.approx(100.0)  # shares of each set, with seeds beside


def test_diversity_chart_values(task: Path) -> None:
    chart = by_title(task_charts(task), "Diversity")
    synthetic = dict(zip(chart.figure["data"][0]["x"], chart.figure["data"][0]["y"]))
    # two distinct one-token texts over 20 records: distinct-1 = 2/20
    assert synthetic["distinct-1"] == pytest.approx(0.1)
    assert synthetic["self-similarity Jaccard"] is not None
    seeds = dict(zip(chart.figure["data"][1]["x"], chart.figure["data"][1]["y"]))
    assert seeds["distinct-1"] == pytest.approx(1.0)


def test_timeline_rates_by_call_index(task: Path) -> None:
    chart = by_title(task_charts(task), "Rejection and dedup rates")
    assert "request_idx" in chart.title and "no timestamps" in chart.title
    rejected_pct, dedup_pct = chart.figure["data"]
    width = int(chart.title.split("bins of ")[1].split()[0])
    # generation-stage rejections only: 9 of 29 offered records, 6 of them duplicates
    offered = {x: h for x, h in zip(rejected_pct["x"], rejected_pct["text"])}
    totals = [tuple(int(w) for w in h.replace("(", "").split()[::2][:3]) for h in offered.values()]
    assert sum(a for a, _, _ in totals) == 20 and sum(r for _, r, _ in totals) == 9
    assert sum(d for _, _, d in totals) == 6
    assert rejected_pct["y"][0] == 0.0 and rejected_pct["y"][-1] == 100.0
    # the last bin starts at the last call's bin: calls 26-29 hold only rejections
    assert rejected_pct["x"][-1] == 29 // width * width
    assert max(dedup_pct["y"]) > 0


def test_rejections_by_block_and_reason(task: Path) -> None:
    chart = by_title(task_charts(task), "Rejections by block and reason (10 records)")
    bars = {t["name"]: dict(zip(t["y"], t["x"])) for t in chart.figure["data"]}
    assert bars == {"exact duplicate": {"length": 0, "dedup": 6}, "too short": {"length": 4, "dedup": 0}}


def test_failures_chart(task: Path) -> None:
    chart = by_title(task_charts(task), "Failed requests")
    assert chart.figure["data"][0]["name"] == "timeout" and chart.figure["data"][0]["y"] == [1]


def test_fallback_timeline_in_write_order(tmp_path: Path) -> None:
    """Without a call index or row in the lineage the rejections are drawn in write order."""
    d = tmp_path / "t"
    rows = [
        {"record": {"q": str(i)}, "block": "b", "reason": "exact duplicate" if i < 30 else "bad"}
        for i in range(60)
    ]
    write_jsonl(d / "rejected.jsonl", rows)
    chart = by_title(task_charts(d), "Duplicates among rejections, in the order they were written")
    (line,) = chart.figure["data"]
    assert line["y"][0] == 100.0 and line["y"][-1] == 0.0


def test_empty_folder_has_no_charts(tmp_path: Path) -> None:
    assert task_charts(tmp_path) == []


def test_chat_records_are_measured_by_their_messages(tmp_path: Path) -> None:
    msgs = [{"role": "user", "content": "a" * 40}, {"role": "assistant", "content": "b" * 59}]
    write_jsonl(tmp_path / "data.jsonl", [{"id": "1", "messages": msgs}, {"id": "2", "messages": msgs}])
    chart = by_title(task_charts(tmp_path), "Length of kept records")
    (bars,) = chart.figure["data"]
    width = bars["width"]
    assert bars["customdata"][100 // width] == 2  # 40 + newline + 59 characters


def test_chart_div_escapes_script_end() -> None:
    chart = Chart(
        "t </script>", {"data": [{"type": "bar", "x": ["</script><script>alert(1)</script>"], "y": [1]}]}
    )
    html = chart_div(chart, "c1")
    assert html.count("</script>") == 1 and "<script>alert" not in html
    assert "\\u003c/script\\u003e" in html and 'id="c1"' in html


def test_plotly_js_is_shipped_locally() -> None:
    path = plotly_js_path()
    assert path.is_file() and path.stat().st_size > 1_000_000
    assert "</script" not in path.read_text(encoding="utf-8")  # safe to inline


def test_large_store_is_read_in_bounded_memory_and_time(tmp_path: Path) -> None:
    """200k accepted and 50k rejected records: peak Python allocations stay far below the
    size of the stores (they are never held), and the charts come in seconds."""
    d = tmp_path / "big"
    d.mkdir()
    words = [f"w{i}" for i in range(2000)]
    with open(d / "data.jsonl", "w") as fh:
        for i in range(200_000):
            text = " ".join(words[(i * 7 + k * 13) % 2000] for k in range(8 + i % 20))
            fh.write(json.dumps(record(i, text)) + "\n")
    with open(d / "rejected.jsonl", "w") as fh:
        for i in range(50_000):
            fh.write(json.dumps(rejected(i, "dedup", "near duplicate (Jaccard >= 0.7)", i * 4)) + "\n")
    size = sum(p.stat().st_size for p in d.iterdir())
    tracemalloc.start()
    start = time.perf_counter()
    charts = task_charts(d)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40_000_000 < size, (peak, size)
    assert elapsed < 60, elapsed
    start = time.perf_counter()
    again = task_charts(d)  # nothing appended: nothing read again, diversity not recomputed
    assert time.perf_counter() - start < max(0.5, elapsed / 10)
    assert [c.figure for c in again] == [c.figure for c in charts]
    timeline = by_title(charts, "Rejection and dedup rates")
    assert len(timeline.figure["data"][0]["x"]) <= 50
    length = by_title(charts, "Length of kept records")
    assert sum(length.figure["data"][0]["customdata"]) == 200_000


def test_timeline_bins_stay_bounded() -> None:
    """A million positions: at most MAX_BINS bins, counts preserved, widths a power of two."""
    from fms_dgt.view.timeline import MAX_BINS, Bins

    bins = Bins(2)
    for position in range(0, 1_000_000, 7):
        bins.add(position, position % 2)
    assert len(bins.bins) <= MAX_BINS and bins.width & (bins.width - 1) == 0
    assert sum(b[0] + b[1] for b in bins.bins) == len(range(0, 1_000_000, 7))
    assert bins.bins[0][0] + bins.bins[0][1] == len(range(0, bins.width, 7))


def test_parquet_stores_are_read(tmp_path: Path) -> None:
    from fms_dgt.datastores.files import FileDatastore

    store = FileDatastore(store_name="data", output_dir=tmp_path, task_name="t", output_data_format="parquet")
    store.save_data([record(i, "y" * 12) for i in range(30)])
    store.close()
    chart = by_title(task_charts(tmp_path / "t"), "Length of kept records")
    (bars,) = chart.figure["data"]
    assert sum(bars["customdata"]) == 30 and bars["customdata"][12 // bars["width"]] == 30


def kept_count(task_dir: Path) -> int:
    return sum(by_title(task_charts(task_dir), "Length of kept records").figure["data"][0]["customdata"])


def test_appended_records_are_read_incrementally(tmp_path: Path) -> None:
    """A running task: later calls see appended lines, a line still being written waits, a
    store rewritten or replaced is read again from the start, final_data takes over."""
    d = tmp_path / "t"
    data = d / "data.jsonl"
    write_jsonl(data, [record(i, "a" * 10) for i in range(10)])
    assert kept_count(d) == 10
    with open(data, "a") as fh:
        fh.writelines(json.dumps(record(i, "b" * 10)) + "\n" for i in range(10, 15))
        fh.write(json.dumps(record(15, "c"))[:20])  # torn: the writer is mid-line
    assert kept_count(d) == 15
    with open(data, "a") as fh:
        fh.write(json.dumps(record(15, "c"))[20:] + "\n")
    assert kept_count(d) == 16
    # rewritten in place (same file, more bytes, other content): read again from the start
    with open(data, "w") as fh:
        fh.writelines(json.dumps(record(i, "z" * 50)) + "\n" for i in range(40))
    chart = by_title(task_charts(d), "Length of kept records")
    (bars,) = chart.figure["data"]
    assert sum(bars["customdata"]) == 40 and bars["customdata"][50 // bars["width"]] == 40
    # replaced by a shorter file (temp file + rename)
    write_jsonl(d / "tmp.jsonl", [record(i, "y") for i in range(3)])
    (d / "tmp.jsonl").replace(data)
    assert kept_count(d) == 3
    write_jsonl(d / "final_data.jsonl", [record(i, "y") for i in range(2)])
    chart = by_title(task_charts(d), "Length of kept records")
    assert "final_data" in chart.title and sum(chart.figure["data"][0]["customdata"]) == 2
