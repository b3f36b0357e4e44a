"""Slow postprocessor and formatter for crash tests.

Postprocessing and formatting take milliseconds on small test data, too short for a test to
SIGKILL a run in the middle of them. These fixtures take as long as asked and announce each
phase in a marker file (one JSON line ``{"pid", "phase"}``), so a test can wait for the
phase it wants to interrupt instead of guessing from wall-clock time.

Used through ``class_path`` in a builder/task config, like any user plugin would be.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fms_dgt.blocks.base import Postprocessor
from fms_dgt.formatters.base import Formatter

_SLEEP_EVERY = 25  # records between sleeps (fewer syscalls, same total delay)


def announce(marker: str | None, phase: str) -> None:
    """Append ``{"pid", "phase", "t"}`` to ``marker`` (flushed, so a watcher sees it at once)."""
    if not marker:
        return
    line = json.dumps({"pid": os.getpid(), "phase": phase, "t": time.time()}) + "\n"
    with open(marker, "a", encoding="utf-8") as fh:
        fh.write(line)


def _paced(records: Iterable[dict[str, Any]], delay: float) -> Iterator[dict[str, Any]]:
    for i, record in enumerate(records, 1):
        if delay and i % _SLEEP_EVERY == 0:
            time.sleep(delay * _SLEEP_EVERY)
        yield record


class SlowPostprocessor(Postprocessor):
    """Keeps records (minus a deterministic share) after ``delay`` seconds per record.

    Args:
        delay: seconds spent per record.
        drop_every: drop records whose id hashes to 0 modulo this (0 keeps all). Dropping by
            id, not by position, gives the same verdicts every time the pass is redone, the
            way a real dedup step would, and forces further generation epochs.
        marker: file the phase is announced in.
    """

    kind = "slow_postprocessor"

    def __init__(
        self, name: str | None = None, *, delay: float = 0.0, drop_every: int = 0, marker: str | None = None
    ) -> None:
        super().__init__(name)
        self.delay = delay
        self.drop_every = drop_every
        self.marker = marker

    def process(
        self, records: Iterable[dict[str, Any]], seeds: Iterable[dict[str, Any]] = ()
    ) -> Iterator[dict[str, Any]]:
        announce(self.marker, "postprocessing")
        for record in _paced(records, self.delay):
            if self.drop_every and _bucket(str(record.get("id")), self.drop_every) == 0:
                continue
            yield record


class SlowFormatter(Formatter):
    """``{"text": "<question>\\n<answer>"}`` per record, ``delay`` seconds each."""

    def __init__(self, name: str | None = None, *, delay: float = 0.0, marker: str | None = None) -> None:
        super().__init__(name)
        self.delay = delay
        self.marker = marker

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"text": f"{record.get('question')}\n{record.get('answer')}", "source_id": record.get("id")}

    def format_all(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        announce(self.marker, "formatting")
        return super().format_all(_paced(records, self.delay))


def _bucket(text: str, modulo: int) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % modulo


def read_phases(marker: Path) -> list[dict[str, Any]]:
    """The phases announced so far (a line still being written is ignored)."""
    if not marker.exists():
        return []
    out = []
    for line in marker.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
