"""bench/dedup_bench.py on small sizes: deterministic data, a working table, recall >= 95%."""

from __future__ import annotations

from typing import Any

from bench.dedup_bench import QUICK, TextSource, main, report, rouge_recall, run_stream, targets, verdict


def test_text_source_is_deterministic_and_sized() -> None:
    a, b = TextSource(seed=3).texts(300), TextSource(seed=3).texts(300)
    assert a == b
    lengths = [len(t.split()) for t in a]
    assert min(lengths) >= 12 and max(lengths) <= 90  # 20-60 words, edited copies vary


def test_stream_and_recall_small() -> None:
    row = run_stream("minhash", 3000, 0.1)
    assert row["n"] == 3000 and 0 < row["rejected"] < 600
    rec = rouge_recall(600, 0.1)
    assert rec["pairs"] > 10 and rec["pair_recall"] >= 0.95 and rec["false_pairs"] == 0


def test_cli_runs_children(capsys: Any) -> None:
    assert (
        main(["--minhash", "2000", "--datasketch", "--rouge", "1000", "--recall", "0", "--planted", "30"])
        == 0
    )
    out = capsys.readouterr().out
    assert "planted pairs at threshold 0.8" in out and "[0.80, 0.81]" in out
    assert "NOT MEASURED  minhash 1,000,000 records <= 180 s: not measured" in out


def test_targets_name_each_miss() -> None:
    def row(kind: str, n: int, wall: float, rss: int = 300) -> dict[str, object]:
        return {"kind": kind, "n": n, "wall_s": wall, "peak_rss_mb": rss}

    good = [row("minhash", 10_000, 1.0), row("minhash", 100_000, 11.0), row("minhash", 1_000_000, 120.0)]
    recall = {"n": 5000, "pair_recall": 0.99, "false_pairs": 0}
    planted = {
        "threshold": 0.8,
        "rows": [
            {"kind": "recall", "flagged": 0.97, "pairs": 9},
            {"kind": "false positive", "flagged": 0.0, "pairs": 9},
        ],
    }
    checks = targets(good + [row("rouge", 100_000, 40.0)], recall, planted)
    assert all(ok for _, ok, _ in checks) and verdict(checks) == "PASS"
    slow = [row("minhash", 10_000, 1.0), row("minhash", 1_000_000, 400.0, rss=3000)]
    checks = targets(slow, {**recall, "pair_recall": 0.9})
    verdicts = {what: ok for what, ok, _ in checks}
    assert verdicts == {
        "minhash 100,000 records <= 20 s": None,
        "minhash 1,000,000 records <= 180 s": False,
        "rouge 100,000 records <= 60 s": None,
        "minhash peak RSS <= 2048 MB": False,
        "minhash time per record 10,000 -> 1,000,000 grows <= 2.0x": False,
        "rouge peak RSS <= 2048 MB": None,
        "rouge pair recall >= 95% on 5,000 (no false pairs)": False,
        "minhash caught >= 95% at Jaccard >= 0.8 (planted pairs)": None,
        "minhash flagged < 1% at Jaccard <= 0.70 (planted pairs)": None,
    }
    assert verdict(checks) == "MISS"


def test_targets_it_did_not_measure_are_not_a_pass() -> None:
    """A --quick run measures no 1M-record size: those targets say so, and the run is PART."""
    rows = [{"kind": "minhash", "n": n, "wall_s": n / 1e5, "peak_rss_mb": 100} for n in (10_000, 100_000)]
    checks = targets(rows, None)
    unmeasured = {what for what, ok, figure in checks if ok is None and figure == "not measured"}
    assert "minhash 1,000,000 records <= 180 s" in unmeasured and any("recall" in w for w in unmeasured)
    assert verdict(checks) == "PART"


def test_quick_targets_print_not_measured(capsys: Any) -> None:
    """What ``--quick`` measures (QUICK sizes) leaves the 1M run and the 100k rouge run out:
    the report prints those as NOT MEASURED / "not measured", and the verdict is PART."""
    rows = [{"kind": "minhash", "n": n, "wall_s": n / 1e5, "peak_rss_mb": 100} for n in QUICK["minhash"]]
    rows += [{"kind": "rouge", "n": n, "wall_s": n / 1e4, "peak_rss_mb": 100} for n in QUICK["rouge"]]
    planted = {
        "threshold": 0.8,
        "rows": [
            {"kind": "recall", "flagged": 0.97, "pairs": 300},
            {"kind": "false positive", "flagged": 0.003, "pairs": 300},
            {"kind": "grey zone", "flagged": 0.5, "pairs": 300},
        ],
    }
    checks = targets(rows, {"n": 1000, "pair_recall": 0.99, "false_pairs": 0}, planted)
    assert verdict(checks) == "PART"
    report({"recall": None, "targets": [{"target": t, "pass": ok, "figure": f} for t, ok, f in checks]})
    out = capsys.readouterr().out
    assert "NOT MEASURED  minhash 1,000,000 records <= 180 s: not measured" in out
    assert "NOT MEASURED  rouge 100,000 records <= 60 s: not measured" in out
    assert (
        "PASS          minhash caught >= 95% at Jaccard >= 0.8 (planted pairs): worst bin 97.00% (300 pairs)"
        in out
    )
    bad = {**planted, "rows": [{"kind": "false positive", "flagged": 0.02, "pairs": 300}]}
    assert (
        dict((w, ok) for w, ok, _ in targets(rows, None, bad))[
            "minhash flagged < 1% at Jaccard <= 0.70 (planted pairs)"
        ]
        is False
    )
