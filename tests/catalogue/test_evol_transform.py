"""``evol_complexity`` and ``evol_quality`` on the real default model: the example tasks,
each row either rewritten (with the operator or aspect used) or rejected with a reason from
the documented set. Each reason on demand, retries with another operator or aspect and the
faithfulness check are tested against a fake model in test_transform_mechanics.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.metrics.text import normalize_answer
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
COMPLEXITY_REASONS = (
    "empty instruction",
    "identical to the original",
    "the model echoed the prompt instead of rewriting the instruction",
    "talks about the rewriting",
    "repeats itself",
    "drifts from the original",
    "shorter than the original",
)
QUALITY_REASONS = (
    "empty response",
    "identical to the original response",
    "the model echoed the prompt instead of rewriting the response",
    "talks about the rewriting",
    "repeats itself",
    "drops the original's content",
    "drops the number",
)


def _rejected(task_dir: Path) -> list[dict[str, Any]]:
    path = task_dir / "rejected.jsonl"
    return read_jsonl(path) if path.exists() else []


def test_evol_complexity_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/evol_complexity/task.yaml"
    spec = yaml.safe_load(task.read_text())
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/evol_complexity"
    final, rejected = read_jsonl(task_dir / "final_data.jsonl"), _rejected(task_dir)
    originals = [r["instruction"] for r in spec["data"]]
    for record in final:
        assert record["instruction"] in originals and record["operator"] in spec["operators"]
        assert normalize_answer(record["evolved_instruction"]) != normalize_answer(record["instruction"])
        assert record["model_name"] == MODEL and record["lineage"]["model"] == MODEL
        assert 1 <= record["lineage"]["attempts"] <= spec["attempts"]
    for rejection in rejected:
        assert rejection["block"] == "evol_complexity" and rejection["reason"].startswith(COMPLEXITY_REASONS)
        raw = rejection["record"]["raw"]
        assert raw["operator"] in spec["operators"] and raw["instruction"] in originals
    # every row ends as a record or as `attempts` rejections
    tries = {o: sum(r["record"]["raw"]["instruction"] == o for r in rejected) for o in originals}
    done = {r["instruction"] for r in final}
    assert all(o in done or tries[o] == spec["attempts"] for o in originals)


def test_evol_quality_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/evol_quality/task.yaml"
    spec = yaml.safe_load(task.read_text())
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/evol_quality"
    final, rejected = read_jsonl(task_dir / "final_data.jsonl"), _rejected(task_dir)
    responses = {r["response"]: r["instruction"] for r in spec["data"]}
    for record in final:
        assert responses[record["response"]] == record["instruction"]
        assert record["aspect"] in spec["aspects"] and record["evolved_response"]
        assert spec["min_overlap"] <= record["faithfulness"] <= 1.0
        assert record["model_name"] == MODEL
    for rejection in rejected:
        assert rejection["block"] == "evol_quality" and rejection["reason"].startswith(QUALITY_REASONS)
        assert rejection["record"]["raw"]["aspect"] in spec["aspects"]
    tries = {r: sum(x["record"]["raw"]["response"] == r for x in rejected) for r in responses}
    done = {r["response"] for r in final}
    assert all(r in done or tries[r] == spec["attempts"] for r in responses)
