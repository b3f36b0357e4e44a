"""``magpie_tag`` mechanics against a fake model (tests/catalogue/transform_server.py): one
structured-output request per tag family and row (none to judge a row without response),
the rows kept whole with typed tags, an unparseable or out-of-range answer kept raw in
``rejected``, ``filter_criteria``, near duplicates removed (the builder's minhash
postprocessor, an embedding_dedup filter a task adds) and the builder from Python
(``fms_dgt.load``). The same builder runs on the real default model in test_magpie_tag.py."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from fms_dgt import load
from tests.catalogue.transform_server import prompt_of, response, run_fake, task
from tests.support.fault_server import FaultServer

ROWS = [
    {"question": "What is the capital of Peru?", "answer": "Lima.", "task_name": "theirs", "id": 7},
    {"instruction": "Write a haiku about rain.", "response": "Soft rain on tin roofs", "source": "poems"},
    {"question": "Name a prime number above 90."},  # no answer: nothing to judge
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "How many days are in a leap year?"},
            {"role": "assistant", "content": "366."},
            {"role": "user", "content": "And in February then?"},
            {"role": "assistant", "content": "29 days."},
        ]
    },
]


def family(body: dict[str, Any]) -> str:
    props = body["response_format"]["json_schema"]["schema"]["properties"]
    for key, name in (
        ("input_quality", "input_quality"),
        ("difficulty", "difficulty"),
        ("primary_tag", "task_category"),
        ("score", "sample_quality"),
    ):
        if key in props:
            return name
    raise AssertionError(f"not a tag request: {props}")


def tagger(overrides: dict[tuple[str, str], str] | None = None) -> Any:
    """Answers every tag request plausibly; ``overrides``: (family, text in the prompt) ->
    the answer's text instead."""

    def reply(body: dict[str, Any]) -> list[str]:
        kind, prompt = family(body), prompt_of(body)
        for (fam, needle), text in (overrides or {}).items():
            if fam == kind and needle in prompt:
                return [text]
        answers = {
            "input_quality": {"explanation": "Clear.", "input_quality": "good"},
            "difficulty": {"intent": "Wants a fact.", "knowledge": "Basic facts.", "difficulty": "easy"},
            "task_category": {
                "primary_tag": "Information seeking",
                "other_tags": ["Math", "Information seeking"],
            },
            "sample_quality": {"explanation": "Right.", "score": 5},
        }
        return [json.dumps(answers[kind])]

    return reply


def test_every_row_tagged_with_one_request_per_family(tmp_path: Path) -> None:
    run = run_fake(task("magpie/tags", "magpie_tag", ROWS), tmp_path, tagger())
    assert run.outcome.status == "complete", run.outcome.message
    asked = Counter(family(b) for b in run.bodies)
    # four rows tagged; three have a response to judge
    assert asked == {"input_quality": 4, "difficulty": 4, "task_category": 4, "sample_quality": 3}
    prompts = [prompt_of(b) for b in run.bodies]
    assert any("Soft rain on tin roofs" in p and "Write a haiku about rain." in p for p in prompts)
    assert any("User: And in February then?" in p and "Assistant: 29 days." in p for p in prompts)
    schema = next(b for b in run.bodies if family(b) == "input_quality")["response_format"]
    assert "excellent" in json.dumps(schema)  # labels constrained by the schema

    final = run.store("final_data")
    assert [r["row"] for r in final] == ROWS  # whole rows (their own task_name and id too), in order
    assert [r["instruction"] for r in final] == [
        "What is the capital of Peru?",
        "Write a haiku about rain.",
        "Name a prime number above 90.",
        "How many days are in a leap year?",
    ]
    assert [r["response"] for r in final] == ["Lima.", "Soft rain on tin roofs", None, "29 days."]
    tags = final[0]["magpie_tags"]
    assert tags == {
        "input_quality": "good",
        "input_quality_explanation": "Clear.",
        "difficulty": "easy",
        "intent": "Wants a fact.",
        "knowledge": "Basic facts.",
        "task_category": "Information seeking",
        "other_task_categories": ["Math"],
        "judge_quality_score": 5,
        "judge_quality_explanation": "Right.",
    }
    assert final[2]["magpie_tags"]["judge_quality_score"] is None
    for record in final:
        assert record["model_name"] == "fake" and record["lineage"]["input_id"]
        assert record["lineage"]["tokens"]["completion"] > 0


def test_an_unparseable_or_out_of_range_answer_is_kept_raw(tmp_path: Path) -> None:
    reply = tagger(
        {
            ("input_quality", "capital of Peru"): "Quality: good!!",  # not JSON
            ("difficulty", "haiku"): json.dumps({"intent": "x", "knowledge": "y", "difficulty": "trivial"}),
        }
    )
    run = run_fake(task("magpie/bad", "magpie_tag", ROWS[:3]), tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    assert [r["instruction"] for r in run.store("final_data")] == ["Name a prime number above 90."]
    rejected = {r["record"]["raw"]["instruction"]: r for r in run.store("rejected")}
    peru = rejected["What is the capital of Peru?"]
    assert peru["block"] == "magpie_tag" and peru["reason"].startswith(
        "unparseable tag answer (input_quality: not JSON"
    )
    assert peru["record"]["raw"]["answers"] == {"input_quality": "Quality: good!!"}
    assert peru["record"]["raw"]["row"] == ROWS[0]
    haiku = rejected["Write a haiku about rain."]
    assert (
        "difficulty: schema violation" in haiku["reason"]
        and "trivial" in haiku["record"]["raw"]["answers"]["difficulty"]
    )
    # a keep_invalid request is not resent: the answer is given back at once and kept raw
    asked = [b for b in run.bodies if family(b) == "input_quality" and "capital of Peru" in prompt_of(b)]
    assert len(asked) == 1
    assert run.store("failed") == []


def test_filter_criteria_keep_rows_whose_tags_meet_them(tmp_path: Path) -> None:
    reply = tagger(
        {
            ("input_quality", "capital of Peru"): json.dumps(
                {"explanation": "Vague.", "input_quality": "poor"}
            ),
            ("sample_quality", "haiku"): json.dumps({"explanation": "Short.", "score": 3}),
        }
    )
    criteria = {"input_quality": ["good", "Excellent"], "sample_quality": ["4", 5]}
    rows = [*ROWS, {"question": "What is the capital of Chile?", "answer": "Santiago."}]
    run = run_fake(task("magpie/filter", "magpie_tag", rows, filter_criteria=criteria), tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    assert [r["instruction"] for r in run.store("final_data")] == [
        "How many days are in a leap year?",
        "What is the capital of Chile?",
    ]
    reasons = {
        r["record"]["raw"]["instruction"]: r["reason"]
        for r in run.store("rejected")
        if r["block"] == "magpie_filter"
    }
    assert reasons == {
        "What is the capital of Peru?": "input_quality 'poor' is not among the labels kept (good, excellent)",
        "Write a haiku about rain.": "sample_quality '3' is not among the labels kept (4, 5)",
        "Name a prime number above 90.": "no sample_quality tag to filter on (the row has no response to judge)",
    }
    kept = run.store("rejected")[0]["record"]["raw"]
    assert kept["magpie_tags"]["input_quality"] and kept["row"]  # the tags are in rejected too


def test_near_duplicates_are_removed(tmp_path: Path) -> None:
    rows = [
        {"question": "What is the tallest mountain in Africa?", "answer": "Kilimanjaro."},
        {"question": "Which planet is closest to the Sun?", "answer": "Mercury."},
        {"question": "What is the tallest mountain in Africa?", "answer": "Mount Kilimanjaro."},
        {"question": "What's the highest peak on the African continent?", "answer": "Kilimanjaro."},
    ]
    # the builder's minhash postprocessor removes the repeated question; an embedding_dedup
    # filter the task adds also removes the paraphrase
    semantic = {
        "name": "same_meaning",
        "type": "embedding_dedup",
        "fields": ["instruction"],
        "threshold": 0.8,
        "index": "flat",
    }
    t = task("magpie/dedup", "magpie_tag", rows, filters=[semantic])
    run = run_fake(t, tmp_path, tagger(), transform_batch_size=1, max_concurrent_calls=1)
    assert run.outcome.status == "complete", run.outcome.message
    assert [r["row"]["answer"] for r in run.store("final_data")] == ["Kilimanjaro.", "Mercury."]
    blocks = Counter(r["block"] for r in run.store("rejected"))
    assert blocks == {"same_meaning": 2}  # streamed in order: both caught on arrival

    (tmp_path / "b").mkdir()
    run = run_fake(task("magpie/minhash", "magpie_tag", rows), tmp_path / "b", tagger())
    assert [r["row"]["answer"] for r in run.store("final_data")] == [
        "Kilimanjaro.",
        "Mercury.",
        "Kilimanjaro.",
    ]
    [dup] = run.store("rejected")
    assert dup["block"] == "near_duplicates" and dup["record"]["row"]["answer"] == "Mount Kilimanjaro."


def test_from_python_with_load(tmp_path: Path) -> None:
    reply = tagger()

    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return response(path, body, reply(body))

    with FaultServer(responder=respond) as srv:
        engine = {"type": "openai", "model": "fake", "base_url": srv.url, "max_retries": 1}
        with load("magpie_tag", engine=engine, filter_criteria={"input_quality": ["good"]}) as tag:
            out = list(tag.process(ROWS[:2]))
    assert [r["row"] for r in out] == ROWS[:2]
    assert all(r["magpie_tags"]["input_quality"] == "good" and r["model_name"] == "fake" for r in out)
