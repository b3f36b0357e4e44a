"""Transformation targets (issue 10): a slow server kept busy, a 1M-row input in flat memory.

* **utilization**: ``answer_questions`` over N input rows against the stub server (log-normal
  latency, mean 0.5 s, sigma 0.8) at ``--max-concurrency 32``: requests/s ÷ (32 ÷ mean
  latency), as for generation (``bench/utilization.py``); target >= 0.93. Unlike generation,
  which stops at its target with requests still in flight, a pass must wait for its last
  rows, so it pays the drain at the end; printed alongside is the ceiling of a zero-overhead
  loop on the stub's same latency draws (``ideal_loop_util``), which only the drain limits.
* **memory**: ``bench_copy`` (no model) over a parquet input of 100,000 and then 1,000,000
  rows; peak RSS of each CLI process from ``wait4``; the ratio large/small must stay within
  1 ± 0.15 (reading, chunking, the done-chunk bookkeeping and the final input-order sort are
  all streamed or bounded).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import REPO, StubProcess, print_table, run_measured, verdict
from bench.utilization import ideal_loop_util

TARGET_UTIL = 0.93
TOLERANCE = 0.15
CONCURRENCY = 32
LATENCY = 0.5


def _task(folder: Path, builder: str, data_path: str, batch: int) -> Path:
    path = folder / "task.yaml"
    path.write_text(
        json.dumps(
            {
                "task_name": "bench_transform",
                "task_description": "transformation benchmark",
                "created_by": "fms_dgt benchmarks",
                "data_builder": builder,
                "data": {"data_path": data_path},
                "runner_config": {"transform_batch_size": batch, "max_concurrent_calls": 64},
            }
        )
    )
    return path


def utilization(rows: int = 2000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dgt-bench-") as tmp, StubProcess(LATENCY, 0.8) as stub:
        folder = Path(tmp)
        (folder / "rows.jsonl").write_text(
            "".join(json.dumps({"question": f"Q{i}?"}) + "\n" for i in range(rows))
        )
        task = _task(folder, "answer_questions", "rows.jsonl", 8)
        cmd = [sys.executable, "-m", "fms_dgt.run", "--no-progress", "--task-paths", str(task)]
        cmd += ["--output-dir", str(folder / "out"), "--engine", "openai", "--model", "stub"]
        cmd += ["--base-url", stub.url, "--max-concurrency", str(CONCURRENCY)]
        stub.reset()
        res = run_measured(cmd)
        if res.returncode != 0:
            raise RuntimeError(f"transformation run failed:\n{res.stderr[-2000:]}")
        stats = stub.stats()
    util = stats["requests_per_s"] / (CONCURRENCY / LATENCY)
    return {
        "rows": rows,
        "util": util,
        "busy": stats["mean_inflight"] / CONCURRENCY,
        "req_s": stats["requests_per_s"],
        "ideal": ideal_loop_util(rows, CONCURRENCY, LATENCY, 0.8, 0),
    }


_WRITE_INPUT = """
import sys
import pyarrow as pa, pyarrow.parquet as pq
n, path = int(sys.argv[1]), sys.argv[2]
writer = pq.ParquetWriter(path, pa.schema([("text", pa.string())]))
for start in range(0, n, 100_000):
    texts = [f"row {i} of the benchmark input, some words to carry" for i in range(start, min(n, start + 100_000))]
    writer.write_table(pa.table({"text": texts}))
writer.close()
"""


def memory(small: int = 100_000, large: int = 1_000_000) -> dict[str, Any]:
    sizes: dict[int, dict[str, float]] = {}
    for n in (small, large):
        with tempfile.TemporaryDirectory(prefix="dgt-bench-") as tmp:
            folder = Path(tmp)
            # written by a child: a parent holding pyarrow and the rows would inflate the
            # measured child's peak RSS (a forked child counts its parent's pages until exec)
            made = run_measured([sys.executable, "-c", _WRITE_INPUT, str(n), str(folder / "rows.parquet")])
            if made.returncode != 0:
                raise RuntimeError(f"writing the input failed:\n{made.stderr[-2000:]}")
            task = _task(folder, "bench_copy", "rows.parquet", 64)
            cmd = [sys.executable, "-m", "fms_dgt.run", "--no-progress", "--task-paths", str(task)]
            cmd += ["--output-dir", str(folder / "out"), "--builder-paths", str(REPO / "bench" / "builders")]
            res = run_measured(cmd)
            if res.returncode != 0:
                raise RuntimeError(f"transformation run failed:\n{res.stderr[-2000:]}")
            final = folder / "out" / "bench_transform" / "final_data.jsonl"
            lines = sum(1 for _ in final.open())
            sizes[n] = {"rss_mb": res.max_rss_mb, "wall": res.wall, "cpu": res.cpu, "final": lines}
    return {"sizes": sizes, "ratio": sizes[large]["rss_mb"] / sizes[small]["rss_mb"]}


def run(rows: int = 2000, small: int = 100_000, large: int = 1_000_000) -> dict[str, Any]:
    util = utilization(rows)
    mem = memory(small, large)
    ok_util = util["util"] >= TARGET_UTIL
    ok_mem = abs(mem["ratio"] - 1) <= TOLERANCE and all(v["final"] == n for n, v in mem["sizes"].items())
    return {"utilization": util, "memory": mem, "pass": ok_util and ok_mem}


def report(s: dict[str, Any]) -> None:
    u, m = s["utilization"], s["memory"]
    rows = [
        (
            f"{u['rows']} rows",
            f"util {u['util']:.3f} (target >= {TARGET_UTIL}) {verdict(u['util'] >= TARGET_UTIL)}; "
            f"busy {u['busy']:.3f}, {u['req_s']:.1f} req/s; "
            f"a zero-overhead loop on the same draws: {u['ideal']:.3f}",
        )
    ]
    for n, v in m["sizes"].items():
        rows.append(
            (
                f"{n:,} rows",
                f"peak RSS {v['rss_mb']:.1f} MB, {v['final']:,} final records, "
                f"wall {v['wall']:.1f}s, CPU {v['cpu']:.1f}s",
            )
        )
    rows.append(
        (
            "ratio",
            f"{m['ratio']:.3f} (target within 1 ± {TOLERANCE}) {verdict(abs(m['ratio'] - 1) <= TOLERANCE)}",
        )
    )
    print_table("transformation: utilization against the stub, memory over a parquet input", rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.transform", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--small", type=int, default=100_000)
    p.add_argument("--large", type=int, default=1_000_000)
    a = p.parse_args(argv)
    s = run(a.rows, a.small, a.large)
    report(s)
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
