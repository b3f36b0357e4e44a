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


# ---- text_classification ---------------------------------------------------------------------

TEXT = re.compile(r"Text: (.*)")
LABELS = ["positive", "negative", "mixed"]


def _text(body: dict[str, Any]) -> str:
    return TEXT.search(prompt_of(body)).group(1)  # type: ignore[union-attr]


def test_classification_one_label_is_a_choice_and_a_label_outside_the_set_is_rejected(
    tmp_path: Path,
) -> None:
    answers = {"Great kettle.": "positive", "Broken zip.": " Negative\n", "Nice but loud.": "so-so"}
    rows = [{"text": t} for t in answers]
    t = task(
        "cls/one",
        "text_classification",
        rows,
        labels=LABELS,
        label_descriptions={"mixed": "likes some things, dislikes others"},
    )
    run = run_fake(t, tmp_path, lambda body: [answers[_text(body)]])
    assert run.outcome.status == "complete", run.outcome.message
    body = run.bodies[0]
    assert body["structured_outputs"] == {"choice": LABELS}  # only a label can be decoded
    prompt = prompt_of(body)
    assert "- mixed: likes some things, dislikes others" in prompt and "- positive\n" in prompt
    assert "A transformation under test." in prompt  # the task description says what labels mean
    final = run.store("final_data")
    assert [(r["text"], r["label"]) for r in final] == [
        ("Great kettle.", "positive"),
        ("Broken zip.", "negative"),
    ]
    assert set(final[0]) == {"task_name", "is_seed", "id", "lineage", "text", "label", "model_name"}
    assert all(r["model_name"] == "fake" for r in final)
    [rejected] = run.store("rejected")
    assert rejected["reason"] == "label 'so-so' is not one of the labels (positive, negative, mixed)"
    assert rejected["block"] == "text_classification" and rejected["record"]["raw"]["output"] == "so-so"
    assert not run.store("failed")


def test_classification_multi_label_with_explanation(tmp_path: Path) -> None:
    answers = {
        "Rain stopped the match.": {"explanation": "Rain and a match.", "labels": ["sport", "weather"]},
        "Nothing here.": {"explanation": "No topic.", "labels": []},
        "Pizza in the sun.": {"explanation": "Food.", "labels": ["food", "politics"]},
        "Snow.": {"labels": ["weather"]},
        "Cut off.": '{"explanation": "The answer was cut',
    }

    def reply(body: dict[str, Any]) -> list[str]:
        answer = answers[_text(body)]
        return [answer if isinstance(answer, str) else json.dumps(answer)]

    labels = ["weather", "sport", "food"]
    t = task(
        "cls/multi",
        "text_classification",
        [{"text": t} for t in answers],
        labels=labels,
        multi_label=True,
        explanation=True,
    )
    run = run_fake(t, tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    schema = run.bodies[0]["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"]) == ["explanation", "labels"]  # the reasons first
    assert schema["properties"]["labels"]["items"]["enum"] == labels
    final = run.store("final_data")
    assert [(r["text"], r["labels"], r["explanation"]) for r in final] == [
        ("Rain stopped the match.", ["weather", "sport"], "Rain and a match."),  # the set's order
        ("Nothing here.", [], "No topic."),
    ]
    assert "label" not in final[0] and final[0]["model_name"] == "fake"
    rejected = {r["record"]["raw"]["text"]: r for r in run.store("rejected")}
    assert rejected["Pizza in the sun."]["reason"] == (
        "label 'politics' is not one of the labels (weather, sport, food)"
    )
    assert rejected["Snow."]["reason"] == "unusable answer: no explanation"
    cut = rejected["Cut off."]
    assert cut["reason"].startswith("unparseable answer: not JSON")
    assert cut["record"]["raw"]["output"] == '{"explanation": "The answer was cut'  # the raw text kept


def test_classification_one_label_with_explanation(tmp_path: Path) -> None:
    answers = {
        "Great kettle.": {"explanation": "Happy.", "label": "Positive"},  # case aside, a label
        "Nice but loud.": {"explanation": "Both.", "label": "neutral"},
        "Broken zip.": {"explanation": "Unhappy."},
    }
    t = task(
        "cls/explained",
        "text_classification",
        [{"text": t} for t in answers],
        labels=LABELS,
        explanation=True,
    )
    run = run_fake(t, tmp_path, lambda body: [json.dumps(answers[_text(body)])])
    assert run.outcome.status == "complete", run.outcome.message
    schema = run.bodies[0]["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"]) == ["explanation", "label"]
    assert schema["properties"]["label"]["enum"] == LABELS
    [record] = run.store("final_data")
    assert (record["label"], record["explanation"]) == ("positive", "Happy.")
    reasons = sorted(r["reason"] for r in run.store("rejected"))
    assert reasons == [
        "label 'neutral' is not one of the labels (positive, negative, mixed)",
        "unusable answer: no label",
    ]


# ---- preference --------------------------------------------------------------------------------

RESPONSE = re.compile(r"\nResponse: (.*)\n\nFirst give", re.S)
PAIR = re.compile(r"Response A: (.*)\n\nResponse B: (.*)\n\nFirst give", re.S)


def _is_judge(body: dict[str, Any]) -> bool:
    return "response_format" in body


def test_preference_absolute_scores_pick_chosen_and_rejected_and_ties_are_rejected(tmp_path: Path) -> None:
    responses = {
        "Name a fruit.": ["A chair.", "An apple.", "A pear.", "An apple."],  # a repeat is judged once
        "Say hi.": ["Hi!", "Hello!", "Hey!", "Hi!"],
        "Count to two.": ["1 2", "", "1 2", "1 2"],  # one distinct non-empty response
        "Spell cat.": ["C-A-T", "K-A-T", "CAT", "cat"],
    }
    scores = {"A chair.": 1, "An apple.": 5, "A pear.": 4, "Hi!": 3, "Hello!": 3, "Hey!": 3, "CAT": "great"}

    def reply(body: dict[str, Any]) -> list[str]:
        if not _is_judge(body):
            return responses[prompt_of(body)][: body["n"]]
        response = RESPONSE.search(prompt_of(body)).group(1)  # type: ignore[union-attr]
        score = scores.get(response, 2)
        return [json.dumps({"feedback": f"About {response}", "score": score})]

    rows = [{"instruction": i} for i in responses]
    run = run_fake(task("pref/abs", "preference", rows, num_responses=4), tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    answering = [b for b in run.bodies if not _is_judge(b)]
    assert len(answering) == 4 and {b["n"] for b in answering} == {4}  # one request per row
    assert {b["temperature"] for b in answering} == {0.9}  # the responder block samples
    judging = [b for b in run.bodies if _is_judge(b)]
    assert {b["temperature"] for b in judging} == {0.0}
    assert judging[0]["response_format"]["json_schema"]["schema"]["properties"]["score"]["enum"] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert len(judging) == 3 + 3 + 4  # distinct responses only; none for the one-response row
    [record] = run.store("final_data")
    assert record["responses"] == ["A chair.", "An apple.", "A pear."] and record["scores"] == [1, 5, 4]
    assert (record["chosen"], record["chosen_score"]) == ("An apple.", 5)
    assert (record["rejected"], record["rejected_score"]) == ("A chair.", 1)
    assert record["model_name"] == "fake" and record["judge_model"] == "fake"
    judge = record["lineage"]["judge"]
    assert judge["mode"] == "absolute" and judge["engine"] == "judge"
    assert [j["feedback"] for j in judge["judgements"]] == [
        "About A chair.",
        "About An apple.",
        "About A pear.",
    ]
    rejected = {r["record"]["raw"]["instruction"]: r for r in run.store("rejected")}
    tie = rejected["Say hi."]
    assert tie["reason"] == "tie: every response scored 3" and tie["block"] == "preference"
    assert tie["record"]["raw"]["scores"] == [3, 3, 3]
    assert rejected["Count to two."]["reason"].startswith("fewer than two distinct responses (1 of 4)")
    unusable = rejected["Spell cat."]
    assert (
        unusable["reason"]
        == 'unusable judge answer for response 3: score "great" is not one of 1, 2, 3, 4, 5'
    )
    assert json.loads(unusable["record"]["raw"]["output"])["score"] == "great"  # the raw text kept
    assert unusable["record"]["raw"]["responses"] == ["C-A-T", "K-A-T", "CAT", "cat"]


def test_preference_on_tie_first_keeps_the_first_two_and_unparseable_judge_text_is_kept(
    tmp_path: Path,
) -> None:
    def reply(body: dict[str, Any]) -> list[str]:
        if not _is_judge(body):
            return [f"{prompt_of(body)} answer {i}" for i in range(body["n"])]
        if "Broken" in prompt_of(body):
            return ["Score: 4 out of 5"]
        return [json.dumps({"feedback": "Fine.", "score": 3})]

    rows = [{"instruction": "Tie"}, {"instruction": "Broken"}]
    run = run_fake(task("pref/first", "preference", rows, on_tie="first"), tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    [record] = run.store("final_data")
    assert (record["chosen"], record["rejected"]) == ("Tie answer 0", "Tie answer 1")
    assert record["scores"] == [3, 3] and record["lineage"]["tie"] is True
    [rejected] = run.store("rejected")
    assert rejected["reason"].startswith("unusable judge answer for response 1: not JSON")
    assert rejected["record"]["raw"]["output"] == "Score: 4 out of 5"


def test_preference_relative_counts_wins_in_either_order(tmp_path: Path) -> None:
    quality = {"good": 3, "fair": 2, "poor": 1}

    def reply(body: dict[str, Any]) -> list[str]:
        if not _is_judge(body):
            return ["poor", "good", "fair"][: body["n"]]
        a, b = PAIR.search(prompt_of(body)).groups()  # type: ignore[union-attr]
        better = "A" if quality[a] > quality[b] else "B"
        return [json.dumps({"feedback": f"{a} vs {b}", "better": better})]

    t = task(
        "pref/rel",
        "preference",
        [{"instruction": "Rate me."}],
        num_responses=3,
        judge_mode="relative",
        rubric="Which one is good?",
    )
    run = run_fake(t, tmp_path, reply, seed=11)
    assert run.outcome.status == "complete", run.outcome.message
    judging = [b for b in run.bodies if _is_judge(b)]
    assert len(judging) == 3 and all("Which one is good?" in prompt_of(b) for b in judging)  # 3 pairs
    [record] = run.store("final_data")
    assert record["responses"] == ["poor", "good", "fair"] and record["scores"] == [0, 2, 1]
    assert (record["chosen"], record["rejected"]) == ("good", "poor")
    judgements = record["lineage"]["judge"]["judgements"]
    assert {(j["a"], j["b"]) for j in judgements} | {(j["b"], j["a"]) for j in judgements} >= {
        (0, 1),
        (0, 2),
        (1, 2),
    }
    assert any(j["a"] > j["b"] for j in judgements)  # some pairs shown in the other order


def test_preference_failed_judge_request_is_recorded_not_a_record(tmp_path: Path) -> None:
    def reply(body: dict[str, Any]) -> list[str]:
        if not _is_judge(body):
            return ["First answer.", "Second answer."][: body["n"]]
        return [json.dumps({"feedback": "Fine.", "score": 4})]

    run = run_fake(
        task("pref/fail", "preference", [{"instruction": "Say something."}]),
        tmp_path,
        reply,
        script=("ok", "400"),  # the responses arrive, the first judge request fails for good
    )
    assert run.outcome.status == "complete", run.outcome.message
    assert not run.store("final_data") and not run.store("rejected")
    [failed] = run.store("failed")
    assert "400" in json.dumps(failed)
