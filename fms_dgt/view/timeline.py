"""The run's timeline without timestamps: rejection and dedup rates along the order of a run.

The stores record no time. What orders a generation run is the builder call index
(``lineage.request_idx``, given to calls in the order they are scheduled) that every
generated record carries, accepted or rejected; a transformation's records carry their input
row (``lineage.row``). Rates are counted per bin of that index. When no record carries
either, the rejected store's own order (it is appended as records are rejected) is the axis.

Counts are kept in at most ``MAX_BINS`` bins: a position past the last bin doubles the bin
width and merges neighbours, so memory is fixed however long the run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

MAX_BINS = 50


@dataclass
class Rates:
    """Rates (%) per bin, ready to draw: ``x`` is the first position of each bin."""

    axis: str  # what the positions are
    unit: str  # one position ("call", "row", "rejected record")
    width: int  # positions per bin
    x: list[int]
    series: dict[str, list[float]]  # name -> % per bin
    hover: list[str]  # the counts behind each bin


class Bins:
    """Counts in ``columns`` per bin of a non-negative integer position, at most
    ``MAX_BINS`` bins: a position past the last bin doubles the bin width (neighbouring
    bins merge), so memory is fixed however long the run."""

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.width = 1
        self.bins: list[list[int]] = []

    def add(self, position: int, column: int) -> None:
        while position // self.width >= MAX_BINS:
            self._merge()
        i = position // self.width
        while len(self.bins) <= i:
            self.bins.append([0] * self.columns)
        self.bins[i][column] += 1

    def _merge(self) -> None:
        self.width *= 2
        merged = [[0] * self.columns for _ in range((len(self.bins) + 1) // 2)]
        for i, b in enumerate(self.bins):
            for c in range(self.columns):
                merged[i // 2][c] += b[c]
        self.bins = merged

    def readable(self, records: int, min_mean: int = 5, min_bins: int = 10) -> None:
        """Merge bins until they hold ``min_mean`` records on average (a rate over one or
        two records is noise), keeping at least ``min_bins``; a bin's records are the sum of
        its first ``records`` columns."""
        while len(self.bins) > min_bins:
            filled = [n for b in self.bins if (n := sum(b[:records]))]
            if not filled or sum(filled) / len(filled) >= min_mean:
                break
            self._merge()


class Timeline:
    """Accepted, rejected and dedup-rejected records of the generation stage per bin of the
    order key (call index or input row)."""

    def __init__(self) -> None:
        self.bins = Bins(3)  # accepted, rejected, rejected as duplicate
        self.keys: Counter[str] = Counter()
        self.written = Bins(2)  # rejections in write order (the fallback): rejected, duplicate
        self.rejections = 0

    def accepted(self, record: dict[str, Any]) -> None:
        self._add(record, [0])

    def rejected(self, row: dict[str, Any], kind: str) -> None:
        dedup = "duplicate" in kind.lower()
        self.written.add(self.rejections, 0)
        if dedup:
            self.written.add(self.rejections, 1)
        self.rejections += 1
        if str(row.get("stage", "generation")) != "generation":
            return  # postprocessing removed an already accepted record: not a generation-time rate
        record = row.get("record")
        self._add(record if isinstance(record, dict) else {}, [1, 2] if dedup else [1])

    def _add(self, record: dict[str, Any], columns: list[int]) -> None:
        lineage = record.get("lineage")
        lineage = lineage if isinstance(lineage, dict) else {}
        for key in ("request_idx", "row"):
            value = lineage.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self.keys[key] += 1
                for column in columns:
                    self.bins.add(value, column)
                return

    def rates(self) -> Rates | None:
        """Rejected and rejected-as-duplicate % of the records offered per bin of the order
        key (generation stage), or the duplicates' share of rejections in write order."""
        if not self.keys:
            return self._written_rates()
        key = self.keys.most_common(1)[0][0]
        self.bins.readable(records=2)
        x, rejected, dedup, hover = [], [], [], []
        for i, (acc, r, d) in enumerate(self.bins.bins):
            if acc + r == 0:
                continue
            x.append(i * self.bins.width)
            rejected.append(round(100 * r / (acc + r), 2))
            dedup.append(round(100 * d / (acc + r), 2))
            hover.append(f"{acc} accepted, {r} rejected ({d} as duplicates)")
        if not x:
            return None
        axis, unit = (
            ("builder call index (request_idx)", "call") if key == "request_idx" else ("input row", "row")
        )
        series = {"rejected % of offered": rejected, "rejected as duplicate %": dedup}
        return Rates(axis, unit, self.bins.width, x, series, hover)

    def _written_rates(self) -> Rates | None:
        if not self.rejections:
            return None
        self.written.readable(records=1, min_mean=20)
        width = self.written.width
        x = [i * width for i in range(len(self.written.bins))]
        share = [round(100 * d / r, 2) if r else 0.0 for r, d in self.written.bins]
        hover = [f"{d} of {r} rejections were duplicates" for r, d in self.written.bins]
        return Rates(
            "rejected records in write order",
            "rejected record",
            width,
            x,
            {"duplicates % of rejections": share},
            hover,
        )
