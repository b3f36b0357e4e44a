"""``preference`` on the real default model: the example task (two sampled answers per
instruction compared by the relative judge, ties rejected, DPO-ready formatted_data) and,
from plain Python through ``fms_dgt.load(...).process``, absolute 1-5 scores with
``on_tie: first``. A 135M judge is poor and often scores both answers the same: what is
checked is the shape of every record and of every rejection. Ties, unusable judge answers, on_tie: first and
relative wins on demand: test_label_mechanics.py (fake model)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fms_dgt import load
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
REASONS = ("tie: every response scored", "unusable judge answer", "fewer than two distinct responses")


def _check_pair(record: dict[str, Any], low: int, high: int) -> None:
    responses, scores = record["responses"], record["scores"]
    assert len(responses) == len(scores) >= 2 and len(set(responses)) == len(responses)
    assert all(isinstance(s, int) and low <= s <= high for s in scores)
    assert record["chosen"] in responses and record["rejected"] in responses
    assert record["chosen"] != record["rejected"]
    assert record["chosen_score"] == max(scores) and record["rejected_score"] == min(scores)
    assert record["chosen_score"] > record["rejected_score"] or record["lineage"].get("tie") is True
    assert record["model_name"] == MODEL and record["judge_model"] == MODEL
    judge = record["lineage"]["judge"]
    assert judge["model"] == MODEL and judge["tokens"]["completion"] > 0


def test_preference_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/preference/task.yaml"
    spec = yaml.safe_load(task.read_text())
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/preference"
    final = read_jsonl(task_dir / "final_data.jsonl")
    rejected = read_jsonl(task_dir / "rejected.jsonl") if (task_dir / "rejected.jsonl").exists() else []
    assert len(final) + len(rejected) == len(spec["data"])  # every row: a pair or a reason
    instructions = [row["instruction"] for row in spec["data"]]
    assert [r["instruction"] for r in final] == [
        i for i in instructions if i in {r["instruction"] for r in final}
    ]
    for record in final:
        _check_pair(record, 0, 1)  # relative: a response's score is the comparisons it won
        [judgement] = record["lineage"]["judge"]["judgements"]
        assert judgement["better"] in ("A", "B") and {judgement["a"], judgement["b"]} == {0, 1}
    for rejection in rejected:
        assert rejection["reason"].startswith(REASONS) and rejection["block"] == "preference", rejection
        assert rejection["record"]["raw"]["instruction"] in instructions
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert len(formatted) == len(final)
    for pair, record in zip(formatted, final):
        assert pair["prompt"] == [
            {"role": "system", "content": spec["formatter"]["system"]},
            {"role": "user", "content": record["instruction"]},
        ]
        assert pair["chosen"] == [{"role": "assistant", "content": record["chosen"]}]
        assert pair["rejected"] == [{"role": "assistant", "content": record["rejected"]}]


def test_absolute_judge_from_python(vllm_engine: Any) -> None:
    rows = [{"instruction": "Suggest a name for a pet goldfish."}]
    with load("preference", engine=vllm_engine, judge_mode="absolute", on_tie="first") as prefer:
        out = list(prefer.process(rows))
        stats = prefer.stats()
    assert len(out) + stats["counts"]["rejected"] == len(rows)
    assert stats["requests"] <= 3  # the responses in one request (n = 2), one score each
    for record in out:
        _check_pair(record, 1, 5)
        judgements = record["lineage"]["judge"]["judgements"]
        assert [j["response"] for j in judgements] == list(range(len(record["responses"])))
