"""``rater`` on the real default model: the example task and IBM fms-dgt's examples/rate
task file (builder alias ``public/examples/qa_rater``, data under ``${DGT_DATA_DIR}``) run
unchanged, every row rated or rejected with its reason. Mechanics a 135M model cannot show
on demand (an answer off the scale, unparseable text) are tested against a fake model in
test_label_mechanics.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
DIFFICULTIES = {"very easy", "easy", "medium", "hard", "very hard"}
COMPAT = REPO / "tests/fixtures/fms_dgt_compat"


def _check(task_dir: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    final = read_jsonl(task_dir / "final_data.jsonl")
    rejected = read_jsonl(task_dir / "rejected.jsonl") if (task_dir / "rejected.jsonl").exists() else []
    assert len(final) + len(rejected) == len(rows)  # every row rated or rejected, none lost
    pairs = [(r["question"], r["answer"]) for r in rows]
    order = [pairs.index((r["question"], r["answer"])) for r in final]
    assert order == sorted(order)  # input order
    for record in final:
        assert set(record["ratings"]) == {"knowledge", "difficulty"}
        assert record["ratings"]["difficulty"] in DIFFICULTIES
        assert isinstance(record["ratings"]["knowledge"], str) and record["ratings"]["knowledge"].strip()
        assert record["model_name"] == MODEL and record["lineage"]["model"] == MODEL
        assert record["lineage"]["input_id"] and record["lineage"]["tokens"]["completion"] > 0
    for rejection in rejected:  # an answer cut at max_tokens, say: kept with its text
        assert rejection["reason"].startswith(("unparseable answer", "unusable answer")), rejection
        assert rejection["block"] == "rater" and "output" in rejection["record"]["raw"]
    return final


def test_rater_example(run_example: RunExample) -> None:
    task = REPO / "tasks/examples/rater/task.yaml"
    rows = yaml.safe_load(task.read_text())["data"]
    rt, outcome = run_example(task, target=None)
    assert outcome.status == "complete", outcome.message
    final = _check(rt.output_dir / "examples/rater", rows)
    assert final, "no row of the example was rated"


def test_fms_dgt_rate_task_file_runs_unchanged(
    run_example: RunExample, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DGT_DATA_DIR", str(COMPAT / "data"))
    rt, outcome = run_example(COMPAT / "tasks/public/examples/rate/task.yaml", target=None)
    assert outcome.status == "complete", outcome.message
    rows = read_jsonl(COMPAT / "data/public/examples/rate/data.jsonl")
    final = _check(rt.output_dir / "public/examples/qa_ratings", rows)
    assert all(r["task_name"] == "public/examples/qa_ratings" for r in final)
