"""Target 6, scale-out: requests spread over several engine replicas keep each one busy.

N stub servers (separate processes, each the 0.5 s / sigma 0.8 log-normal model) behind one
``openai`` engine given N base URLs (``--base-url URL1 URL2 ...``); the engine spreads
requests least-in-flight first (``fms_dgt/engines/replicas.py``, shared with
``vllm-server`` replicas). The engine's limit is ``per_replica × N`` requests in flight, so
each replica's capacity is ``per_replica ÷ mean latency`` and

    replica utilization = replica's requests/s ÷ (per_replica ÷ mean latency)

must stay >= 0.9 for every replica.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from bench.harness import StubProcess, print_table, run_cli, verdict

TARGET = 0.9


def run(
    replicas: int = 4,
    per_replica: int = 32,
    records: int = 4000,
    latency: float = 0.5,
    sigma: float = 0.8,
) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        stubs = [stack.enter_context(StubProcess(latency, sigma, seed=i)) for i in range(replicas)]
        concurrency = per_replica * replicas
        res, results = run_cli(
            [s.url for s in stubs], records, max_concurrency=concurrency, max_calls=concurrency
        )
        stats = [s.stats() for s in stubs]
    capacity = per_replica / latency
    per = [
        {
            "served": st["served"],
            "util": st["requests_per_s"] / capacity,
            "busy": st["mean_inflight"] / per_replica,
            "max_inflight": st["max_inflight"],
            "req_s": st["requests_per_s"],
        }
        for st in stats
    ]
    total_rate = sum(st["served"] for st in stats) / max(
        max(st["last_response"] or 0 for st in stats) - min(st["first_request"] or 0 for st in stats), 1e-9
    )
    return {
        "replicas": replicas,
        "per_replica": per_replica,
        "records": records,
        "latency_mean": latency,
        "latency_sigma": sigma,
        "per": per,
        "min_util": min(p["util"] for p in per),
        "total_util": total_rate / (capacity * replicas),
        "wall": res.wall,
        "pass": min(p["util"] for p in per) >= TARGET,
    }


def report(s: dict[str, Any]) -> None:
    rows = [
        (
            f"replica {i + 1}",
            f"util {p['util']:.3f}  busy {p['busy']:.3f}  {p['req_s']:.1f} req/s  "
            f"{p['served']} served  max in flight {p['max_inflight']}",
        )
        for i, p in enumerate(s["per"])
    ]
    rows.append(
        (
            "all",
            f"min replica util {s['min_util']:.3f} (target >= {TARGET}) {verdict(s['pass'])}; "
            f"aggregate util {s['total_util']:.3f}; wall {s['wall']:.1f}s",
        )
    )
    print_table(
        f"scale: {s['records']} records over {s['replicas']} replicas x {s['per_replica']} in flight, "
        f"latency mean {s['latency_mean']} s sigma {s['latency_sigma']}",
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    p.add_argument("--replicas", type=int, default=4)
    p.add_argument("--per-replica", type=int, default=32)
    p.add_argument("--records", type=int, default=4000)
    p.add_argument("--latency-mean", type=float, default=0.5)
    p.add_argument("--latency-sigma", type=float, default=0.8)
    a = p.parse_args(argv)
    s = run(a.replicas, a.per_replica, a.records, a.latency_mean, a.latency_sigma)
    report(s)
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
