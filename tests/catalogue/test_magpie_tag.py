"""The ``magpie_tag`` builder on the real default model: its example task (question/answer
pairs, an instruction/response row and a conversation), every row either tagged with typed
labels or rejected with a reason from the documented set. Each reason on demand, the
requests sent and the builder from Python are tested against a fake model in
test_magpie_tag_mechanics.py."""

from __future__ import annotations

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

TASK = REPO / "tasks/examples/magpie_tag/task.yaml"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
QUALITY = ("very poor", "poor", "average", "good", "excellent")
DIFFICULTY = ("very easy", "easy", "medium", "hard", "very hard")
CATEGORIES = (
    "Information seeking", "Reasoning", "Planning", "Editing", "Coding & Debugging", "Math",
    "Role playing", "Data analysis", "Creative writing", "Advice seeking", "Brainstorming", "Others",
)  # fmt: skip


def test_magpie_tag_example(run_example: RunExample) -> None:
    spec = yaml.safe_load(TASK.read_text())
    rows = spec["data"]
    rt, outcome = run_example(TASK, target=None)
    assert outcome.status == "complete", outcome.message
    task_dir = rt.output_dir / "examples/magpie_tag"
    final = read_jsonl(task_dir / "final_data.jsonl")
    path = task_dir / "rejected.jsonl"
    rejected = read_jsonl(path) if path.exists() else []
    for record in final:
        assert record["row"] in rows and record["model_name"] == MODEL
        tags = record["magpie_tags"]
        assert tags["input_quality"] in QUALITY and tags["input_quality_explanation"] is not None
        assert tags["difficulty"] in DIFFICULTY and tags["task_category"] in CATEGORIES
        assert set(tags["other_task_categories"]) <= set(CATEGORIES)
        assert tags["judge_quality_score"] in (1, 2, 3, 4, 5)  # every example row has a response
        assert record["lineage"]["model"] == MODEL and record["lineage"]["tokens"]["completion"] > 0
    assert [r["row"] for r in final] == [r for r in rows if r in [f["row"] for f in final]]  # input order
    for rejection in rejected:
        block, reason = rejection["block"], rejection["reason"]
        assert block in ("magpie_tag", "near_duplicates"), rejection  # the example has no filter
        if block == "magpie_tag":
            assert reason.startswith("unparseable tag answer") and rejection["record"]["raw"]["answers"]
    assert final, rejected  # structured output: the labels parse
    # the second row repeats the first one's question: the near-duplicate postprocessor
    if rows[0] in [r["row"] for r in final]:
        assert rows[1] not in [r["row"] for r in final]
    # every row ends as a record or a rejection (a failed request would be in failed)
    failed = task_dir / "failed.jsonl"
    assert len(final) + len(rejected) + (len(read_jsonl(failed)) if failed.exists() else 0) >= len(rows)
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert formatted == [{**r["row"], "magpie_tags": r["magpie_tags"]} for r in final]
