"""Each engine instance has its own concurrency limit, shared by every caller of that
engine and independent of other engines: two engines driven at once on one event loop (as
two tasks or two blocks do) each stay at their own limit, and neither waits on the other."""

from __future__ import annotations

import asyncio

from fms_dgt.engines.types import LMRequest, LMResult
from tests.support.scripted_engine import ScriptedEngine


class CountingEngine(ScriptedEngine):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.inflight = self.peak = 0

    async def _generate_once(self, request: LMRequest) -> LMResult:
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        try:
            return await super()._generate_once(request)
        finally:
            self.inflight -= 1


def test_two_engines_keep_their_own_limits_on_one_loop() -> None:
    narrow = CountingEngine("a", max_concurrency=2, latency=0.02)
    wide = CountingEngine("b", max_concurrency=16, latency=0.02)

    async def main() -> tuple[list[LMResult], list[LMResult]]:
        reqs = [LMRequest(prompt=f"p{i}") for i in range(48)]
        # many callers per engine, as builder calls are: each awaits one request
        a = asyncio.gather(*(narrow.agenerate(r) for r in reqs[:16]))
        b = asyncio.gather(*(wide.agenerate(r) for r in reqs))
        out = await asyncio.wait_for(asyncio.gather(a, b), 30)
        await narrow.aclose()
        await wide.aclose()
        return out[0], out[1]

    ra, rb = asyncio.run(main())
    assert all(r.ok for r in ra + rb) and len(ra) == 16 and len(rb) == 48
    assert narrow.peak == 2 and wide.peak == 16
