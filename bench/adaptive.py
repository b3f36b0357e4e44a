"""Adaptive concurrency (issue 14): how the ``openai`` engine copes with a provider that
has a concurrency quota it does not announce.

The fault server (``tests/support/fault_server.py``, in its own process) answers 429 to any
request that arrives while 24 are being answered, and answers the others after 50 ms. The
engine is given no ``max_concurrency`` (as a user who does not know the quota) and sends
2,000 short chat requests at once. Targets: over the second half of the run the
engine keeps between 16 and 32 requests in flight, and under 5% of the requests are
answered 429 (every request must succeed in the end: a 429 is retried).

Printed per variant (the default first; the others show what the adaptation is worth):

* ``default``: ``max_concurrency`` not set: adaptive, starting at 32 under a ceiling of 256;
* ``start 128``: ``max_concurrency: 128`` given: adaptive, starting at 128 (the worst case
  for this server);
* ``fixed 128``: adaptation off (``adaptive_concurrency: false``), the old behaviour.

Columns: requests answered 429 (and their share of the 2,000), mean requests in flight in
the engine and at the server over the second half, the mean in-flight limit over the
second half, the wall time and the requests per second against the quota's best
(24 / 50 ms = 480/s).

Run: ``python -m bench.adaptive`` (``--requests``, ``--quota``, ``--latency``, ``--ceiling``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from bench.harness import print_table, verdict
from fms_dgt.engines import LMRequest
from fms_dgt.engines.openai_engine import OpenAIEngine
from tests.support.server_process import ServerProcess

CHAT = [{"role": "user", "content": "hello"}]


def _mean_over(samples: list[tuple[float, float]], start: float, end: float, initial: float = 0.0) -> float:
    """Time-weighted mean of a step function given as (time, value after) changes."""
    level, area, at = initial, 0.0, start
    for when, value in samples:
        if when > end:
            break
        if when > start:
            area += level * (when - at)
            at = when
        level = value
    area += level * (end - at)
    return area / (end - start) if end > start else 0.0


def run_variant(url: str, requests: int, ceiling: int, mode: str) -> dict[str, Any]:
    engine = OpenAIEngine(
        "fake",
        base_url=url,
        api_key="sk-bench",
        max_concurrency=None if mode == "default" else ceiling,
        adaptive_concurrency=mode != "fixed",
    )
    samples: list[tuple[float, int, float]] = []

    async def sample() -> None:
        while True:
            admission = engine._admission
            if admission is not None:
                samples.append((time.monotonic(), admission.limit.inflight, admission.limit.limit))
            await asyncio.sleep(0.005)

    async def go() -> tuple[float, float, int]:
        sampler = asyncio.ensure_future(sample())
        t0 = time.monotonic()
        try:
            results = await engine.agenerate_batch([LMRequest(messages=CHAT) for _ in range(requests)])
        finally:
            sampler.cancel()
            await engine.aclose()
        return t0, time.monotonic(), sum(r.ok for r in results)

    t0, t1, ok = asyncio.run(go())
    middle = (t0 + t1) / 2
    half = [s for s in samples if s[0] >= middle]
    return {
        "start": t0,
        "end": t1,
        "ok": ok,
        "inflight": sum(s[1] for s in half) / max(1, len(half)),
        "limit": sum(s[2] for s in half) / max(1, len(half)),
        "seconds": t1 - t0,
    }


def run(requests: int = 2000, quota: int = 24, latency: float = 0.05, ceiling: int = 128) -> dict[str, Any]:
    """Every variant against a fresh server; the figures, with ``pass`` for the default."""
    variants: dict[str, dict[str, Any]] = {}
    for name, mode in (("default", "default"), ("start 128", "start-ceiling"), ("fixed 128", "fixed")):
        with ServerProcess(max_inflight=quota, latency=latency) as srv:
            figures = run_variant(srv.url, requests, ceiling, mode)
            records = srv.records()
        middle = (figures["start"] + figures["end"]) / 2
        figures["rejected"] = sum(1 for _, _, outcome in records["log"] if outcome == "429")
        figures["served_inflight"] = _mean_over(
            [(t, n) for t, n in records["inflight"]], middle, figures["end"]
        )
        figures["rate"] = figures["ok"] / figures["seconds"]
        variants[name] = figures
    default = variants["default"]
    share = default["rejected"] / requests
    ok = default["ok"] == requests and share < 0.05 and 16 <= default["inflight"] <= 32
    return {
        "requests": requests,
        "quota": quota,
        "latency": latency,
        "ceiling": ceiling,
        "variants": variants,
        "share_429": share,
        "inflight": default["inflight"],
        "pass": ok,
    }


def report(s: dict[str, Any]) -> None:
    best = s["quota"] / s["latency"]
    rows = []
    for name, f in s["variants"].items():
        line = (
            f"429s {f['rejected']} ({f['rejected'] / s['requests']:.1%}), in flight {f['inflight']:.1f} "
            f"(server {f['served_inflight']:.1f}), limit {f['limit']:.1f}, {f['seconds']:.1f} s, "
            f"{f['rate']:.0f} req/s ({f['rate'] / best:.0%} of {best:.0f}), {f['ok']}/{s['requests']} ok"
        )
        if name == "default":
            line += f"  {verdict(s['pass'])}"
        rows.append((name, line))
    title = f"adaptive concurrency: quota {s['quota']} in flight, {s['latency'] * 1000:.0f} ms, ceiling {s['ceiling']}"
    print_table(title, rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.adaptive", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--quota", type=int, default=24, help="the server answers 429 beyond this many in flight")
    p.add_argument("--latency", type=float, default=0.05, help="seconds per answered request")
    p.add_argument(
        "--ceiling", type=int, default=128, help="max_concurrency of the start-128 and fixed variants"
    )
    args = p.parse_args(argv)
    s = run(args.requests, args.quota, args.latency, args.ceiling)
    report(s)
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
