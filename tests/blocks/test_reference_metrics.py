"""Reference metrics: reference_metrics() on hand-made records with known scores, and
``python -m fms_dgt.report --reference FIELD:REFERENCE`` (text, JSON, and its errors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fms_dgt.metrics import reference_metrics
from fms_dgt.metrics.reference import pair_scores, parse_spec
from fms_dgt.report import main

RECORDS = [
    # identical after SQuAD normalisation (EM, F1 = 1); ROUGE keeps "the": ROUGE-2 F = 2/3
    {"answer": "The Eiffel Tower.", "gold": "eiffel tower"},
    # 2 of 4 words shared, one bigram of 3 shared
    {"answer": "paris is big", "gold": "paris is in france"},
    # nothing in common
    {"answer": "blue", "gold": "red"},
    # no answer, and a reference that is not text: both missing
    {"gold": "x"},
    {"answer": "x", "gold": 3},
]


def test_scores_of_known_pairs() -> None:
    s = pair_scores("paris is big", ["paris is in france"])
    # ROUGE-1: overlap 2, P 2/3, R 2/4 -> F 4/7; ROUGE-2: {paris is} of 2 and 3 bigrams -> F 0.4
    assert s["rouge1"] == pytest.approx(4 / 7) and s["rouge2"] == pytest.approx(0.4)
    assert s["rougeL"] == pytest.approx(4 / 7) and s["exact_match"] == 0.0
    assert s["token_f1"] == pytest.approx(4 / 7)
    # several references: the best counts
    assert pair_scores("red", ["blue", "Red!"])["exact_match"] == 1.0


def test_reference_metrics_over_records() -> None:
    r = reference_metrics(RECORDS, "answer", "gold")
    assert (r["records"], r["scored"], r["missing"]) == (5, 3, 2)
    em = r["metrics"]["exact_match"]
    assert (
        em["mean"] == pytest.approx(1 / 3, abs=1e-4) and em["p50"] == 0.0 and em["p90"] == pytest.approx(0.8)
    )
    f1 = r["metrics"]["token_f1"]
    assert f1["mean"] == pytest.approx((1 + 4 / 7 + 0) / 3, abs=1e-4)
    assert r["metrics"]["rouge2"]["mean"] == pytest.approx((2 / 3 + 0.4 + 0) / 3, abs=1e-4)
    json.dumps(r)  # plain numbers, for a dataset card


def test_dotted_fields_and_nothing_to_score() -> None:
    rows = [{"out": {"answer": "a b"}, "meta": {"gold": ["a b", "c"]}}]
    assert reference_metrics(rows, "out.answer", "meta.gold")["metrics"]["rougeL"]["mean"] == 1.0
    empty = reference_metrics(rows, "answer", "gold")
    assert empty["scored"] == 0 and empty["metrics"]["rouge1"] is None


@pytest.mark.parametrize("spec", ["answer", "answer:", ":gold", "a:b:c"])
def test_bad_spec(spec: str) -> None:
    with pytest.raises(ValueError, match="FIELD:REFERENCE_FIELD"):
        parse_spec(spec)


def _output(tmp_path: Path) -> Path:
    task = tmp_path / "out" / "t1"
    task.mkdir(parents=True)
    rows = [{"task_name": "t1", "id": str(i), **r} for i, r in enumerate(RECORDS)]
    (task / "final_data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (task / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "out"


def test_report_cli_prints_and_writes_reference_metrics(tmp_path: Path, capsys: Any) -> None:
    out = _output(tmp_path)
    assert main([str(out), "--reference", "answer:gold", "--json", str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert "  reference    answer vs gold: 3 of 5 records: ROUGE-1 " in text and "exact match 0.333" in text
    doc = json.loads((tmp_path / "r.json").read_text())
    (ref,) = doc["tasks"][0]["reference"]
    assert ref["field"] == "answer" and ref["metrics"]["token_f1"]["mean"] == pytest.approx(0.5238, abs=1e-4)


def test_report_cli_errors(tmp_path: Path, capsys: Any) -> None:
    out = _output(tmp_path)
    assert main([str(out), "--reference", "answer"]) == 2
    assert "FIELD:REFERENCE_FIELD" in capsys.readouterr().err
    assert main([str(out), "--reference", "answer:golden"]) == 2
    err = capsys.readouterr().err
    assert (
        "no record has a field 'golden' (did you mean 'gold'?)" in err
        and "record fields: answer, gold" in err
    )
