"""Progress display: a tqdm bar per task on a terminal, periodic log lines otherwise, with
request and token rates from the engines."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("fms_dgt.progress")
LOG_EVERY_SECONDS = 10.0


class Progress:
    def __init__(self, enabled: bool = True, use_bars: bool | None = None) -> None:
        self.enabled = enabled
        self.use_bars = sys.stderr.isatty() if use_bars is None else use_bars
        self._bars: dict[str, Any] = {}
        self._state: dict[str, dict[str, Any]] = {}

    def start(self, task: str, *, total: int | None, initial: int = 0, unit: str = "records") -> None:
        self._state[task] = {
            "n": initial,
            "total": total,
            "t0": time.monotonic(),
            "n0": initial,
            "last_log": time.monotonic(),
            "unit": unit,
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
        elapsed = max(now - st["t0"], 1e-6)
        parts = [f"{(st['n'] - st['n0']) / elapsed:.1f} {st['unit']}/s"]
        if ledger is not None:
            stats = ledger.engine_stats.values()
            reqs = sum(s.requests for s in stats)
            toks = sum(s.completion_tokens for s in stats)
            parts.append(f"{reqs / elapsed:.1f} req/s")
            parts.append(f"{toks / elapsed:.0f} tok/s")
        return ", ".join(parts)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
