"""``rater``, ``text_classification`` and ``preference`` against a fake model
(tests/catalogue/transform_server.py): what is sent, and the answers a 135M model gives
only by chance (a difficulty off the scale, a label outside the set, unparseable text, a
judge's tie) on demand. The same builders run on the real default model in
test_rater.py, test_text_classification.py and test_preference.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.catalogue.transform_server import prompt_of, run_fake, task
from tests.core.helpers import REPO, run_cli

COMPAT = REPO / "tests/fixtures/fms_dgt_compat"

# ---- rater -----------------------------------------------------------------------------------


def test_rater_keeps_ratings_and_rejects_unusable_answers_with_their_text(tmp_path: Path) -> None:
    answers = {
        "Capital of France?": json.dumps({"knowledge": "European capitals.", "difficulty": "very easy"}),
        "Prove Fermat's last theorem.": json.dumps(
            {"knowledge": "Modular forms.", "difficulty": "very hard"}
        ),
        "Boiling point of water?": json.dumps({"knowledge": "Basic physics.", "difficulty": "trivial"}),
        "Speed of light?": "It is quite easy, I would say",
        "Largest planet?": json.dumps({"knowledge": "   ", "difficulty": "easy"}),
    }

    def reply(body: dict[str, Any]) -> list[str]:
        question = re.search(r"Question: (.*)", prompt_of(body)).group(1)  # type: ignore[union-attr]
        return [answers[question]]

    rows = [{"question": q, "answer": "..."} for q in answers]
    run = run_fake(task("rate/fake", "rater", rows), tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    body = run.bodies[0]
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["difficulty"]["enum"] == ["very easy", "easy", "medium", "hard", "very hard"]
    final = run.store("final_data")
    assert [(r["question"], r["ratings"]) for r in final] == [
        ("Capital of France?", {"knowledge": "European capitals.", "difficulty": "very easy"}),
        ("Prove Fermat's last theorem.", {"knowledge": "Modular forms.", "difficulty": "very hard"}),
    ]
    assert all(r["model_name"] == "fake" and r["answer"] == "..." for r in final)
    rejected = {r["record"]["raw"]["question"]: r for r in run.store("rejected")}
    assert set(rejected) == {"Boiling point of water?", "Speed of light?", "Largest planet?"}
    off_scale = rejected["Boiling point of water?"]
    assert off_scale["reason"].startswith("unusable answer: difficulty: input should be 'very easy'")
    assert json.loads(off_scale["record"]["raw"]["output"])["difficulty"] == "trivial"
    text = rejected["Speed of light?"]
    assert text["reason"].startswith("unparseable answer: not JSON") and text["block"] == "rater"
    assert text["record"]["raw"]["output"] == "It is quite easy, I would say"  # the raw text kept
    assert rejected["Largest planet?"]["reason"] == "unusable answer: knowledge is empty"
    assert not run.store("failed")  # an unusable answer is a rejection, not a failed request


def test_fms_dgt_rate_task_file_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DGT_DATA_DIR", raising=False)  # ${DGT_DATA_DIR} is then ./data
    done = run_cli("--validate", "--task-paths", "tasks/public/examples/rate/task.yaml", cwd=COMPAT)
    assert done.returncode == 0, done.stderr
    assert "public/examples/qa_ratings" in done.stdout and "builder public/examples/qa_rater" in done.stdout
