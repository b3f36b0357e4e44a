"""The export benchmark runs end to end on a small size (no timing asserted here; the
100k-record figure is in docs/export.md): its rows load back identical."""

from __future__ import annotations

from bench.export import run


def test_export_bench_small() -> None:
    figures = run(3000)
    assert figures["identical_rows"] is True
    assert figures["rows"] == {"train": 2700, "validation": 150, "test": 150}
