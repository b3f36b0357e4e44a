"""The judging builders' mechanics against a fake model (tests/catalogue/transform_server.py):
what a small real model does only by chance happens on demand: an answer that is not JSON
(cut at max_tokens), a score out of range, a list whose length does not match the row, a
label outside the set. Each is one request (no engine retry) and one rejection that keeps
the raw answer. The same builders run on the real default model in test_<builder>.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.catalogue.transform_server import prompt_of, run_fake, task


def schema_of(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema the request constrains the answer to."""
    return body["response_format"]["json_schema"]["schema"]


def rejections(run: Any) -> dict[str, dict[str, Any]]:
    """The rejected store by the first word of the row's instruction."""
    return {r["record"]["raw"]["instruction"].split()[0]: r for r in run.store("rejected")}


# ---- instruction_backtranslation ------------------------------------------------------------


def test_instruction_backtranslation_rejects_unusable_ratings_with_the_raw_answer(tmp_path: Path) -> None:
    answers = {
        "Alpha": '{"reason": "Direct and complete.", "score": 5}',
        "Bravo": '{"reason": "It rambles on and on and',  # cut at max_tokens
        "Charlie": '{"reason": "Great.", "score": 7}',  # out of range
        "Delta": '{"score": 0, "reason": "Bad."}',  # out of range, below
        "Echo": '{"reason": "No score given."}',  # missing field
        "Foxtrot": "Score: 4",  # not JSON at all
        "Golf": "[5]",  # JSON, but no object
    }
    seen: list[str] = []

    def reply(body: dict[str, Any]) -> list[str]:
        instruction = re.search(r"Instruction:\n(\w+)", prompt_of(body)).group(1)  # type: ignore[union-attr]
        seen.append(instruction)
        return [answers[instruction]]

    rows = [
        {"instruction": f"{w} asks how to fold a paper plane.", "generation": f"Answer {w}."} for w in answers
    ]
    run = run_fake(task("ib/mech", "instruction_backtranslation", rows), tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    assert sorted(seen) == sorted(answers)  # one request per row: nothing retried
    score = schema_of(run.bodies[0])["properties"]["score"]
    assert (score["type"], score["minimum"], score["maximum"]) == ("integer", 1, 5)
    [record] = run.store("final_data")
    assert (record["score"], record["reason"]) == (5, "Direct and complete.")
    assert record["generation"] == "Answer Alpha." and record["model_name"] == "fake"
    assert record["lineage"]["input_id"] and record["lineage"]["model"] == "fake"
    rejected = rejections(run)
    assert set(rejected) == {"Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf"}
    for word, r in rejected.items():
        assert r["block"] == "instruction_backtranslation"
        assert r["record"]["raw"]["output"] == answers[word]  # the raw answer is kept
        assert r["record"]["raw"]["generation"] == f"Answer {word}."
    assert rejected["Bravo"]["reason"].startswith("unparseable answer: Invalid JSON")
    assert rejected["Foxtrot"]["reason"].startswith("unparseable answer: Invalid JSON")
    assert (
        rejected["Charlie"]["reason"] == "invalid answer: score = 7: Input should be less than or equal to 5"
    )
    assert (
        rejected["Delta"]["reason"] == "invalid answer: score = 0: Input should be greater than or equal to 1"
    )
    assert rejected["Echo"]["reason"] == "invalid answer: score: Field required"
    assert rejected["Golf"]["reason"] == "invalid answer: answer = [5]: Input should be an object"
    assert not run.store("failed")


# ---- quality_scorer -------------------------------------------------------------------------

FIRST_LINE = re.compile(r"Instruction:\n(\w+)")


def first_word(body: dict[str, Any]) -> str:
    return FIRST_LINE.search(prompt_of(body)).group(1)  # type: ignore[union-attr]


def test_quality_scorer_scores_every_response_in_one_request(tmp_path: Path) -> None:
    answers = {
        "Alpha": '{"scores": [6, 2]}',  # responses 1 and 3 (2 is blank)
        "Bravo": '{"scores": [4, 5, 1]}',  # count mismatch: 3 scores for 2 responses
        "Charlie": '{"scores": [3, 9]}',  # out of range
        "Delta": '{"scores": [4, ',  # cut off
    }
    rows = [
        {"instruction": "Alpha: boil an egg?", "responses": ["Six minutes.", "  ", "Eggs are food."]},
        {"instruction": "Bravo: capital of Japan?", "responses": ["Tokyo.", "Kyoto."]},
        {"instruction": "Charlie: a name tip?", "responses": ["Repeat it.", "Say it twice."]},
        {"instruction": "Delta: why is the sky blue?", "responses": ["Scattering."]},
        {"instruction": "Echo: nothing to score?", "responses": ["", " "]},
    ]
    run = run_fake(
        task("qs/mech", "quality_scorer", rows, max_score=6),
        tmp_path,
        lambda body: [answers[first_word(body)]],
    )
    assert run.outcome.status == "complete", run.outcome.message
    assert sorted(first_word(b) for b in run.bodies) == ["Alpha", "Bravo", "Charlie", "Delta"]  # not Echo
    bodies = {first_word(b): b for b in run.bodies}
    alpha = prompt_of(bodies["Alpha"])
    assert "[Response 1]\nSix minutes." in alpha and "[Response 3]\nEggs are food." in alpha
    assert "[Response 2]" not in alpha  # the blank response is not shown
    scores = schema_of(bodies["Alpha"])["properties"]["scores"]
    assert (scores["minItems"], scores["maxItems"], scores["items"]["maximum"]) == (2, 2, 6)
    assert schema_of(bodies["Bravo"])["properties"]["scores"]["maxItems"] == 2
    [record] = run.store("final_data")
    assert record["scores"] == [6, None, 2] and record["responses"] == rows[0]["responses"]
    assert record["model_name"] == "fake"
    rejected = {r["record"]["raw"]["instruction"].split(":")[0]: r for r in run.store("rejected")}
    assert rejected["Bravo"]["reason"] == "count mismatch: 3 scores for 2 responses"
    assert rejected["Charlie"]["reason"] == "score 9 of response 2 is out of range 1..6"
    assert rejected["Delta"]["reason"].startswith("unparseable answer: Invalid JSON")
    assert rejected["Echo"]["reason"] == "no response to score: every response is blank"
    assert "output" not in rejected["Echo"]["record"]["raw"]  # never asked
    for word in ("Bravo", "Charlie", "Delta"):
        assert rejected[word]["record"]["raw"]["output"] == answers[word]
        assert rejected[word]["block"] == "quality_scorer"


# ---- complexity_scorer ----------------------------------------------------------------------

INSTRUCTION_ONE = re.compile(r"\[Instruction \d+\]\n(\w+)")


def test_complexity_scorer_scores_the_instructions_side_by_side(tmp_path: Path) -> None:
    answers = {
        "Alpha": '{"scores": [1, 4]}',
        "Bravo": '{"scores": [2]}',  # count mismatch: 1 score for 2 instructions
        "Charlie": '{"scores": [0, 3]}',  # out of range
        "Delta": '{"score": [1, 2]}',  # the wrong key
    }
    rows = [
        {"instructions": ["Alpha: name a fruit.", "", "Alpha: name a fruit grown in Norway and when."]},
        {"instructions": ["Bravo: add 2 and 3.", "Bravo: add 2 and 3, then square it."]},
        {"instructions": ["Charlie: say hi.", "Charlie: say hi in five languages."]},
        {"instructions": ["Delta: why rain?", "Delta: why rain falls in drops."]},
        {"instructions": ["   "]},
    ]

    def reply(body: dict[str, Any]) -> list[str]:
        return [answers[INSTRUCTION_ONE.search(prompt_of(body)).group(1).rstrip(":")]]  # type: ignore[union-attr]

    run = run_fake(task("cs/mech", "complexity_scorer", rows, max_score=5), tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    assert len(run.bodies) == 4  # the all-blank row is not sent
    alpha = next(b for b in run.bodies if "Alpha" in prompt_of(b))
    assert "[Instruction 3]\nAlpha: name a fruit grown" in prompt_of(
        alpha
    ) and "[Instruction 2]" not in prompt_of(alpha)
    scores = schema_of(alpha)["properties"]["scores"]
    assert (scores["minItems"], scores["maxItems"], scores["items"]["maximum"]) == (2, 2, 5)
    [record] = run.store("final_data")
    assert record["scores"] == [1, None, 4] and record["instructions"] == rows[0]["instructions"]
    assert record["model_name"] == "fake" and set(record) >= {"instructions", "scores", "lineage"}
    reasons = {
        r["record"]["raw"]["instructions"][0].split(":")[0].strip(): r["reason"]
        for r in run.store("rejected")
    }
    assert reasons == {
        "Bravo": "count mismatch: 1 score for 2 instructions",
        "Charlie": "score 0 of instruction 1 is out of range 1..5",
        "Delta": "invalid answer: scores: Field required",
        "": "no instruction to score: every instruction is blank",
    }


# ---- ultrafeedback --------------------------------------------------------------------------


def evaluations(*pairs: tuple[str, int]) -> str:
    return json.dumps({"evaluations": [{"rationale": r, "rating": n} for r, n in pairs]})


def test_ultrafeedback_rates_each_generation_on_the_aspect(tmp_path: Path) -> None:
    answers = {
        "Alpha": evaluations(("Follows the format.", 5), ("Ignores the list format.", 2)),
        "Bravo": evaluations(("Fine.", 4)),  # count mismatch: 1 evaluation for 2 generations
        "Charlie": evaluations(("Fine.", 4), ("Too good.", 6)),  # out of range
        "Delta": '{"evaluations": [{"rationale": "Fine.", "rating": 4}, {"rationale": "Cut',
    }
    rows = [
        {
            "instruction": f"{w}: name three fruits as a list.",
            "generations": ["apple, pear, fig", "Fruit is good."],
        }
        for w in answers
    ]

    def reply(body: dict[str, Any]) -> list[str]:
        return [answers[first_word(body)]]

    run = run_fake(task("uf/mech", "ultrafeedback", rows, aspect="instruction_following"), tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    assert len(run.bodies) == 4  # one request per row, whatever came back
    prompt = prompt_of(run.bodies[0])
    assert prompt.startswith("You are judging 2 responses to an instruction for instruction following")
    assert "[Response 2]\nFruit is good." in prompt
    schema = schema_of(run.bodies[0])
    assert (
        schema["properties"]["evaluations"]["minItems"]
        == schema["properties"]["evaluations"]["maxItems"]
        == 2
    )
    assert schema["$defs"]["Evaluation"]["properties"]["rating"]["maximum"] == 5
    [record] = run.store("final_data")
    assert record["ratings"] == [5, 2] and record["rationales"] == [
        "Follows the format.",
        "Ignores the list format.",
    ]
    assert record["aspect"] == "instruction_following" and record["generations"] == rows[0]["generations"]
    assert record["model_name"] == "fake"
    rejected = {r["record"]["raw"]["instruction"].split(":")[0]: r for r in run.store("rejected")}
    assert rejected["Bravo"]["reason"] == "count mismatch: 1 evaluation for 2 generations"
    assert rejected["Charlie"]["reason"] == (
        "invalid answer: evaluations.1.rating = 6: Input should be less than or equal to 5"
    )
    assert rejected["Delta"]["reason"].startswith("unparseable answer: Invalid JSON")
    assert all(rejected[w]["record"]["raw"]["output"] == answers[w] for w in rejected)


def test_ultrafeedback_default_aspect_is_overall(tmp_path: Path) -> None:
    rows = [{"instruction": "Alpha: say hi.", "generations": ["Hi!", ""]}]
    run = run_fake(
        task("uf/overall", "ultrafeedback", rows),
        tmp_path,
        lambda body: [evaluations(("Friendly.", 5), ("Empty.", 1))],
    )
    [record] = run.store("final_data")
    assert record["aspect"] == "overall" and record["ratings"] == [5, 1]
    prompt = prompt_of(run.bodies[0])
    assert "for overall quality" in prompt and "[Response 2]\n(empty response)" in prompt


# ---- prometheus_eval ------------------------------------------------------------------------


def verdict(feedback: str, result: Any) -> str:
    return json.dumps({"feedback": feedback, "result": result})


def test_prometheus_absolute_scores_against_the_rubric(tmp_path: Path) -> None:
    answers = {
        "Alpha": verdict("Correct and matches the reference.", 5),
        "Bravo": verdict("Wrong author.", 6),  # out of range
        "Charlie": '{"feedback": "The response is',  # cut off
    }
    rows = [
        {
            "instruction": "Alpha: boiling point of water?",
            "response": "100 C.",
            "reference_answer": "100 °C at sea level.",
        },
        {"instruction": "Bravo: who wrote Hamlet?", "response": "Dickens.", "reference_answer": "  "},
        {"instruction": "Charlie: legs of a spider?", "response": "Eight."},
    ]
    run = run_fake(
        task("pe/abs", "prometheus_eval", rows, rubric="factual_validity"),
        tmp_path,
        lambda body: [answers[first_word(body)]],
    )
    assert run.outcome.status == "complete", run.outcome.message
    prompts = {first_word(b): prompt_of(b) for b in run.bodies}
    assert "Reference answer (score 5):\n100 °C at sea level." in prompts["Alpha"]
    assert "Reference answer" not in prompts["Bravo"]  # a blank reference answer is none
    assert "Score rubric:\nAre the facts the response states correct" in prompts["Charlie"]
    result = schema_of(run.bodies[0])["properties"]["result"]
    assert (result["type"], result["minimum"], result["maximum"]) == ("integer", 1, 5)
    [record] = run.store("final_data")
    assert (record["result"], record["feedback"], record["rubric"]) == (
        5,
        "Correct and matches the reference.",
        "factual_validity",
    )
    assert record["reference_answer"] == "100 °C at sea level." and record["response"] == "100 C."
    assert record["model_name"] == "fake"
    rejected = {r["record"]["raw"]["instruction"].split(":")[0]: r for r in run.store("rejected")}
    assert (
        rejected["Bravo"]["reason"] == "invalid answer: result = 6: Input should be less than or equal to 5"
    )
    assert rejected["Charlie"]["reason"].startswith("unparseable answer: Invalid JSON")
    assert rejected["Charlie"]["record"]["raw"]["output"] == answers["Charlie"]
    assert rejected["Bravo"]["block"] == "prometheus_eval"


def test_prometheus_relative_picks_a_or_b_and_rejects_a_tie(tmp_path: Path) -> None:
    answers = {
        "Alpha": verdict("B explains the steps; A only gives a number.", "B"),
        "Bravo": verdict("Both are equally good.", "tie"),  # no ties: A or B
    }
    rows = [
        {
            "instruction": f"{w}: what is 12 times 12?",
            "response_a": "144",
            "response_b": "12 x 12 = 144, since 12 x 10 + 12 x 2.",
        }
        for w in answers
    ]
    rubrics = {
        "shows_work": "Does the response show how it reached the answer? Score 1: no steps. Score 5: every step."
    }
    t = task("pe/rel", "prometheus_eval", rows, mode="relative", rubric="shows_work", rubrics=rubrics)
    run = run_fake(t, tmp_path, lambda body: [answers[first_word(body)]])
    assert run.outcome.status == "complete", run.outcome.message
    prompt = prompt_of(run.bodies[0])
    assert "Response A:\n144\n\nResponse B:\n12 x 12 = 144" in prompt
    assert "Score rubric:\nDoes the response show how it reached the answer?" in prompt
    assert schema_of(run.bodies[0])["properties"]["result"]["enum"] == ["A", "B"]
    [record] = run.store("final_data")
    assert record["result"] == "B" and record["rubric"] == "shows_work" and record["response_a"] == "144"
    assert record["reference_answer"] is None and record["model_name"] == "fake"
    [rejected] = run.store("rejected")
    assert rejected["reason"] == "invalid answer: result = 'tie': Input should be 'A' or 'B'"
    assert rejected["record"]["raw"]["output"] == answers["Bravo"]


def test_prometheus_rubric_given_as_text(tmp_path: Path) -> None:
    rows = [{"instruction": "Alpha: describe rain.", "response": "Water falling from clouds."}]
    text = "Is the response concise? Score 1: rambling. Score 5: one clear sentence."
    run = run_fake(
        task("pe/text", "prometheus_eval", rows, rubric=text), tmp_path, lambda body: [verdict("Short.", 5)]
    )
    [record] = run.store("final_data")
    assert record["rubric"] == "custom" and f"Score rubric:\n{text}" in prompt_of(run.bodies[0])
