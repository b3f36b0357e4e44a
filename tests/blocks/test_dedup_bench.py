"""bench/dedup_bench.py on small sizes: deterministic data, a working table, recall >= 95%."""

from __future__ import annotations

from bench.dedup_bench import TextSource, main, rouge_recall, run_stream


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


def test_cli_runs_children(capsys: object) -> None:
    assert main(["--minhash", "2000", "--datasketch", "--rouge", "1000", "--recall", "0"]) == 0
