"""Target 4, flat memory: peak RSS barely moves when a run writes 10x more records.

Two CLI runs of the bench task against an instant stub, 10,000 and 100,000 records, same
builder, validators, dedup and datastore; peak RSS of each process from ``wait4``. The
ratio large/small must stay within ±15%. What legitimately grows is the dedup index (a
few dozen bytes per accepted record); everything else (in-context pool, datastore handles,
postprocessing) is bounded or streamed.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.harness import StubProcess, print_table, run_cli, verdict

TOLERANCE = 0.15


def run(small: int = 10000, large: int = 100000) -> dict[str, Any]:
    sizes = {}
    with StubProcess(0.0, 0.0) as stub:
        for n in (small, large):
            res, results = run_cli([stub.url], n)
            sizes[n] = {"rss_mb": res.max_rss_mb, "wall": res.wall, "final": results["final_lines"]}
    ratio = sizes[large]["rss_mb"] / sizes[small]["rss_mb"]
    return {
        "small": small,
        "large": large,
        "sizes": sizes,
        "ratio": ratio,
        "pass": abs(ratio - 1) <= TOLERANCE,
    }


def report(s: dict[str, Any]) -> None:
    rows = [
        (f"{n} records", f"peak RSS {v['rss_mb']:.1f} MB, {v['final']} final records, wall {v['wall']:.1f}s")
        for n, v in s["sizes"].items()
    ]
    rows.append(("ratio", f"{s['ratio']:.3f} (target within 1 ± {TOLERANCE}) {verdict(s['pass'])}"))
    print_table("memory: peak RSS against an instant stub", rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    p.add_argument("--small", type=int, default=10000)
    p.add_argument("--large", type=int, default=100000)
    a = p.parse_args(argv)
    s = run(a.small, a.large)
    report(s)
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
