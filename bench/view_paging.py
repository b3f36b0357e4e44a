"""Viewer paging benchmark: a 1,000,000-record task opened and paged through the real viewer
over HTTP, from jsonl and from parquet.

    python -m bench.view_paging                    # 1,000,000 records, target < 300 ms a page
    python -m bench.view_paging --records 100000 --json out.json

Made up front (not timed): an output folder with two tasks, ``bench/jsonl`` (``data.jsonl``)
and ``bench/parquet`` (``data.parquet/``, parts of 50,000 rows as the datastore writes them),
each with the same records (question, answer, chat ``messages``, lineage) and a ``rejected``
store of a tenth as many lines over four blocks and reasons. The viewer app runs under
uvicorn on 127.0.0.1 in a thread; each figure is the wall time of one HTTP GET of a page as a
browser would fetch it (the HTML of 25 records):

- ``open``: the first records page of a store the viewer has not seen (a big jsonl file's
  index is then built in the background: the first pages answer at once);
- ``index complete``: when the record count shown reaches the store's (polled);
- ``first`` / ``middle`` / ``last``: a page there, after the index is complete: its first
  visit (for parquet, the row group's first read), then again (median of 3);
- ``search``: the first page of a search for a word in about one record in 1,000 (a new
  query: the scan runs until the page is full plus a 50 ms budget), then its page 2;
- ``filter``: the rejected store filtered by a block and reason; the first filter of a
  store reads every line's labels once (like ``open``), then its page 2 and another filter.

The target (issue 12) is < 300 ms a page, ``open`` included: the verdict covers opening and
paging, plain and filtered. Search pages are held to the same 300 ms in a verdict line of
their own (the issue sets no figure for search; a search scans the store, not an index).
The index build and the first filter are reported, not judged (they happen once per store
per viewer process and are incremental afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

TARGET_MS = 300.0
WORDS = [f"w{i}" for i in range(5000)]
RARE = "zanzibar"


def make_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        question = " ".join(rng.choices(WORDS, k=rng.randint(8, 20))) + "?"
        if i % 1000 == 500:
            question = f"{RARE} {question}"
        answer = " ".join(rng.choices(WORDS, k=rng.randint(20, 60))) + "."
        out.append(
            {
                "task_name": "bench/view",
                "is_seed": False,
                "id": f"{i:016x}",
                "question": question,
                "answer": answer,
                "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                "lineage": {"builder": "simple", "model": "SmolLM2-135M-Instruct", "icl_ids": ["a", "b"]},
            }
        )
    return out


def build(root: Path, n: int) -> None:
    """The two task folders (not timed)."""
    from fms_dgt.datastores.files import encode_lines
    from fms_dgt.datastores.parquet import ParquetStore

    jdir, pdir = root / "bench" / "jsonl", root / "bench" / "parquet"
    jdir.mkdir(parents=True)
    pdir.mkdir(parents=True)
    reasons = [
        ("length", "too short: 3 < 20"),
        ("length", "too long: 900 > 800"),
        ("dedup", "exact duplicate"),
    ]
    reasons.append(("judge", "score 2 < 4"))
    with open(jdir / "data.jsonl", "wb") as fh:
        for start in range(0, n, 50_000):
            fh.write(encode_lines(make_records(min(50_000, n - start), seed=start)))

    def chunks() -> Any:
        for start in range(0, n, 50_000):
            yield from make_records(min(50_000, n - start), seed=start)

    ParquetStore(pdir / "data.parquet").replace(chunks())
    rejected = [
        {"record": r, "block": reasons[i % 4][0], "reason": reasons[i % 4][1], "stage": "generation"}
        for i, r in enumerate(make_records(max(1, n // 10), seed=99))
    ]
    for d in (jdir, pdir):
        (d / "rejected.jsonl").write_bytes(encode_lines(rejected))
        (d / "task_results.json").write_text(json.dumps({"status": "complete", "target": n}))


class Server:
    """The viewer app under uvicorn on 127.0.0.1, in a thread, stopped by its handle."""

    def __init__(self, root: Path) -> None:
        import uvicorn

        from fms_dgt.view.app import create_app

        self.token = "bench-token"
        self.port = free_port()
        config = uvicorn.Config(
            create_app(root, self.token), host="127.0.0.1", port=self.port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def get(self, path: str) -> tuple[float, str]:
        sep = "&" if "?" in path else "?"
        url = f"http://127.0.0.1:{self.port}{path}{sep}token={self.token}"
        t0 = time.perf_counter()
        with urllib.request.urlopen(url) as resp:
            body = resp.read().decode()
        return (time.perf_counter() - t0) * 1000, body


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(srv: Server, task: str, n: int) -> dict[str, float]:
    base = f"/records?t={task}&store=data&size=25"
    last = -(-n // 25)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    out["open"], body = srv.get(base + "&page=1")
    assert "<td><code>" in body, "the first page shows no record"
    while _count(srv, task) < n:  # a big file's index is built in the background
        time.sleep(0.02)
    out["index complete (after open)"] = (time.perf_counter() - t0) * 1000
    _, body = srv.get(base + "&page=1")
    assert f'<span id="total">{n}</span>' in body, "the page does not show the record count"
    for name, page in (("first", 1), ("middle", last // 2), ("last", last)):
        out[f"{name} (first visit)"] = srv.get(f"{base}&page={page}")[0]
        out[f"{name} (again)"] = statistics.median(srv.get(f"{base}&page={page}")[0] for _ in range(3))
    out["search"], body = srv.get(f"{base}&q={RARE.upper()}")
    assert RARE in body, "the search found nothing"
    out["search page 2"], _ = srv.get(f"{base}&q={RARE.upper()}&page=2")
    filt = f"/records?t={task}&store=rejected&f1=dedup&f2=exact+duplicate"
    out["filter (first: labels)"], body = srv.get(filt)
    assert f'<span id="total">{max(1, n // 10) // 4}' in body or n < 40, "wrong filtered count"
    out["filter page 2"], _ = srv.get(filt + "&page=2")
    out["other filter"], _ = srv.get(f"/records?t={task}&store=rejected&f1=length&f2=too+long&page=3")
    return {k: round(v, 1) for k, v in out.items()}


def _count(srv: Server, task: str) -> int:
    _, body = srv.get("/api/status")
    return int(next(t for t in json.loads(body)["tasks"] if t["name"] == task)["counts"].get("data", 0))


def run(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="view_bench_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        build(root, n)
        made = time.perf_counter() - t0
        size = (root / "bench" / "jsonl" / "data.jsonl").stat().st_size
        with Server(root) as srv:
            figures = {fmt: measure(srv, f"bench/{fmt}", n) for fmt in ("jsonl", "parquet")}
    return {
        "records": n,
        "jsonl_bytes": size,
        "build_seconds": round(made, 1),
        "ms": figures,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.view_paging", description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = p.parse_args(argv)
    figures = run(args.records)
    rows = list(next(iter(figures["ms"].values())))
    print(
        f"\nviewer paging, {args.records:,} records ({figures['jsonl_bytes'] / 1e6:.0f} MB of jsonl), ms per HTTP GET"
    )
    print(f"load average {figures['load_average_1m']} on {os.cpu_count()} cores\n")
    print("| request | jsonl | parquet |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r} | {figures['ms']['jsonl'][r]} | {figures['ms']['parquet'][r]} |")
    once = ("index complete (after open)", "filter (first: labels)")
    searches = ("search", "search page 2")
    ms = figures["ms"].values()
    judged = [v for fmt in ms for k, v in fmt.items() if k not in once and k not in searches]
    searched = [v for fmt in ms for k, v in fmt.items() if k in searches]
    ok = max(judged) < TARGET_MS
    print(
        f"\nslowest page {max(judged)} ms (target < {TARGET_MS:g} ms; index build and first filter not judged) -> {'OK' if ok else 'MISS'}"
    )
    print(
        f"slowest search page {max(searched)} ms (held to the same {TARGET_MS:g} ms) -> {'OK' if max(searched) < TARGET_MS else 'MISS'}"
    )
    print(f"command: python -m bench.view_paging --records {args.records}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
