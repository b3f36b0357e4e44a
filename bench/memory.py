"""Target 4, flat memory: peak RSS barely moves when a run writes 10x more records.

Two CLI runs of the bench task against an instant stub, 10,000 and 100,000 records, same
builder, validators, dedup and datastore; peak RSS of each process from ``wait4``. The
ratio large/small must stay within ±15%. What legitimately grows is the dedup index (8
bytes per record for exact dedup, 8 per LSH band for minhash dedup, whose verification
sketches go to a temporary file outside the process's memory); everything else (in-context
pool, datastore handles, postprocessing) is bounded or streamed. With minhash dedup
available, a second pair of runs with exact dedup only separates the two.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.harness import StubProcess, dedup_blocks, print_table, run_cli, verdict

TOLERANCE = 0.15


def _pair(stub: StubProcess, small: int, large: int, near_dedup: bool) -> dict[str, Any]:
    sizes = {}
    for n in (small, large):
        res, results = run_cli([stub.url], n, near_dedup=near_dedup)
        sizes[n] = {"rss_mb": res.max_rss_mb, "wall": res.wall, "final": results["final_lines"]}
    return {"sizes": sizes, "ratio": sizes[large]["rss_mb"] / sizes[small]["rss_mb"]}


def run(small: int = 10000, large: int = 100000) -> dict[str, Any]:
    """The bench task as configured (minhash dedup too when the checkout has it) decides the
    verdict; with minhash on, a second pair with exact dedup only shows what the near-dup
    index itself adds."""
    configs = {}
    with StubProcess(0.0, 0.0) as stub:
        configs[dedup_blocks()] = _pair(stub, small, large, near_dedup=True)
        if "minhash" in dedup_blocks():
            configs["exact_dedup only"] = _pair(stub, small, large, near_dedup=False)
    headline = next(iter(configs.values()))
    return {
        "small": small,
        "large": large,
        "configs": configs,
        "sizes": headline["sizes"],
        "ratio": headline["ratio"],
        "pass": abs(headline["ratio"] - 1) <= TOLERANCE,
    }


def report(s: dict[str, Any]) -> None:
    rows = []
    for name, c in s["configs"].items():
        rows += [
            (
                f"{n} records",
                f"peak RSS {v['rss_mb']:.1f} MB, {v['final']} final records, wall {v['wall']:.1f}s",
            )
            for n, v in c["sizes"].items()
        ]
        ok = abs(c["ratio"] - 1) <= TOLERANCE
        rows.append(("ratio", f"{c['ratio']:.3f} (target within 1 ± {TOLERANCE}) {verdict(ok)}  [{name}]"))
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
