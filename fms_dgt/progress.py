"""Progress display: a tqdm bar per task on a terminal, periodic log lines otherwise, with
request and token rates from the engines.

Rates are measured over the last ``RATE_WINDOW_SECONDS`` (not since the task started), so
they show current throughput: model loading and server start-up at the beginning of a run
do not drag them towards zero for minutes."""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from typing import Any

log = logging.getLogger("fms_dgt.progress")
LOG_EVERY_SECONDS = 10.0
RATE_WINDOW_SECONDS = 30.0


class Progress:
    def __init__(self, enabled: bool = True, use_bars: bool | None = None) -> None:
        self.enabled = enabled
        self.use_bars = sys.stderr.isatty() if use_bars is None else use_bars
        self._bars: dict[str, Any] = {}
        self._state: dict[str, dict[str, Any]] = {}

    def start(
        self, task: str, *, total: int | None, initial: int = 0, unit: str = "records", ledger: Any = None
    ) -> None:
        """Begin showing ``task``. ``ledger`` gives the request and token counts the task
        starts from (a resumed task carries its earlier runs' totals), so rates count only
        what this run does."""
        reqs = toks = None
        if ledger is not None:
            stats = ledger.engine_stats.values()
            reqs = sum(s.requests for s in stats)
            toks = sum(s.completion_tokens for s in stats)
        self._state[task] = {
            "n": initial,
            "total": total,
            "t0": time.monotonic(),
            "n0": initial,
            "last_log": time.monotonic(),
            "unit": unit,
            # (time, records, requests, completion tokens) samples for windowed rates
            "window": deque([(time.monotonic(), initial, reqs, toks)]),
        }
        if self.enabled and self.use_bars:
            from tqdm import tqdm

            self._bars[task] = tqdm(
                total=total,
                initial=initial,
                desc=task,
                unit=f" {unit}",
                position=len(self._bars),
                leave=True,
                dynamic_ncols=True,
            )

    def advance(self, task: str, n: int, ledger: Any = None) -> None:
        st = self._state.get(task)
        if st is None:
            return
        st["n"] += n
        bar = self._bars.get(task)
        now = time.monotonic()
        if bar is not None:
            bar.update(n)
            if ledger is not None and now - st.get("last_post", 0) > 0.5:
                bar.set_postfix_str(self._rates(st, ledger, now), refresh=False)
                st["last_post"] = now
        elif self.enabled and now - st["last_log"] >= LOG_EVERY_SECONDS:
            st["last_log"] = now
            total = f"/{st['total']}" if st["total"] else ""
            log.info("%s: %d%s %s (%s)", task, st["n"], total, st["unit"], self._rates(st, ledger, now))

    def set(self, task: str, n: int) -> None:
        st = self._state.get(task)
        if st is None:
            return
        bar = self._bars.get(task)
        if bar is not None:
            bar.n = n
            bar.refresh()
        st["n"] = n

    @staticmethod
    def _rates(st: dict[str, Any], ledger: Any, now: float) -> str:
        reqs = toks = None
        if ledger is not None:
            stats = ledger.engine_stats.values()
            reqs = sum(s.requests for s in stats)
            toks = sum(s.completion_tokens for s in stats)
        window: deque[tuple[float, int, int | None, int | None]] = st["window"]
        window.append((now, st["n"], reqs, toks))
        while len(window) > 2 and now - window[1][0] >= RATE_WINDOW_SECONDS:
            window.popleft()
        t0, n0, reqs0, toks0 = window[0]
        elapsed = max(now - t0, 1e-6)
        parts = [f"{_fmt((st['n'] - n0) / elapsed)} {st['unit']}/s"]
        if reqs is not None:
            parts.append(f"{_fmt((reqs - (reqs0 or 0)) / elapsed)} req/s")
            parts.append(f"{_fmt((toks - (toks0 or 0)) / elapsed)} tok/s")  # type: ignore[operator]
        return ", ".join(parts)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def _fmt(rate: float) -> str:
    """Two significant digits at most (a CPU run makes 0.05 req/s; "0.0" would read as stuck)."""
    if rate >= 100:
        return f"{rate:.0f}"
    if rate >= 10:
        return f"{rate:.1f}".rstrip("0").rstrip(".")
    return f"{rate:.2g}"
