"""The transformation builders' mechanics against a fake model (tests/catalogue/
transform_server.py): what is sent (system prompts, n, templates, per-task sampling, raw
prompts) and what comes back on demand (distinct samples, empty answers, rewrites that are
unusable or drop the original's content, a failed request). The same builders run on the
real default model in test_<builder>.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.catalogue.transform_server import as_json, prompt_of, run_fake, task

# ---- text_generation ------------------------------------------------------------------------


def test_text_generation_samples_n_answers_in_one_request(tmp_path: Path) -> None:
    def reply(body: dict[str, Any]) -> list[str]:
        question = prompt_of(body)
        if question.startswith("Say nothing"):
            return ["  ", "Something after all."]  # one empty sample: rejected, the other kept
        return [f"Answer {i} to {question}" for i in range(body.get("n", 1))]

    rows = [
        {"instruction": "Why is the sea salty?"},
        {"instruction": "Name a red fruit.", "system_prompt": "Answer in one word."},
        {"instruction": "Say nothing at all."},
    ]
    t = task("tg/n", "text_generation", rows, num_generations=2, system_prompt="Be brief.")
    run = run_fake(t, tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    assert len(run.bodies) == 3 and all(b["n"] == 2 for b in run.bodies)  # one request per row
    systems = {b["messages"][-1]["content"]: b["messages"][0] for b in run.bodies}
    assert systems["Name a red fruit."] == {"role": "system", "content": "Answer in one word."}
    assert systems["Why is the sea salty?"] == {"role": "system", "content": "Be brief."}
    final = run.store("final_data")
    assert [(r["instruction"], r["generation_index"]) for r in final] == [
        ("Why is the sea salty?", 0),
        ("Why is the sea salty?", 1),
        ("Name a red fruit.", 0),
        ("Name a red fruit.", 1),
        ("Say nothing at all.", 1),
    ]
    first = final[0]
    assert (
        first["generation"] == "Answer 0 to Why is the sea salty?" and first["system_prompt"] == "Be brief."
    )
    assert final[2]["system_prompt"] == "Answer in one word."
    assert all(r["model_name"] == "fake" and r["lineage"]["input_id"] for r in final)
    [rejected] = run.store("rejected")
    assert rejected["reason"] == "empty generation" and rejected["block"] == "text_generation"
    assert rejected["record"]["raw"]["generation_index"] == 0


def test_text_generation_failed_request_is_recorded_not_a_record(tmp_path: Path) -> None:
    rows = [{"instruction": "First question?"}, {"instruction": "Second question?"}]
    run = run_fake(
        task("tg/fail", "text_generation", rows),
        tmp_path,
        lambda body: [f"Answer to {prompt_of(body)}"],
        script=("ok", "400"),  # the second request fails for good (a 400 is not retried)
        transform_batch_size=1,
        max_concurrent_calls=1,
    )
    assert run.outcome.status == "complete", run.outcome.message
    assert [r["instruction"] for r in run.store("final_data")] == ["First question?"]
    [failed] = run.store("failed")
    assert "400" in json.dumps(failed)


# ---- chat_generation ------------------------------------------------------------------------


def test_chat_generation_continues_the_conversation(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "Hi there."}]},
        {
            "messages": [
                {"role": "system", "content": "You are a pirate."},
                {"role": "user", "content": "Where is the gold?"},
                {"role": "assistant", "content": "Buried, matey."},
                {"role": "user", "content": "Where exactly?"},
            ]
        },
    ]
    t = task("chat/next", "chat_generation", rows, system_prompt="Be kind.", num_generations=2)
    run = run_fake(
        t, tmp_path, lambda body: [f"Turn {i} after {len(body['messages'])}" for i in range(body["n"])]
    )
    assert run.outcome.status == "complete", run.outcome.message
    sent = sorted((b["messages"] for b in run.bodies), key=len)
    assert sent[0] == [{"role": "system", "content": "Be kind."}, rows[0]["messages"][0]]
    assert sent[1] == rows[1]["messages"]  # it had a system message: sent as it is
    final = run.store("final_data")
    assert len(final) == 4
    for record in final:
        turn = {"role": "assistant", "content": record["generation"]}
        assert record["conversation"] == [*record["messages"], turn]
        assert record["generation"] == f"Turn {record['generation_index']} after {len(record['messages'])}"
        assert record["model_name"] == "fake"
    assert final[2]["messages"] == rows[1]["messages"]


# ---- inference --------------------------------------------------------------------------------


def test_inference_renders_the_template_and_keeps_the_row(tmp_path: Path) -> None:
    rows = [
        {"id": 7, "city": "Lyon", "country": "France", "odd key": "x"},
        {"id": 8, "city": "Porto", "country": "Portugal", "odd key": "y"},
    ]
    t = task(
        "inf/template",
        "inference",
        rows,
        prompt_template="Describe {{ city }} ({{ country }}, {{ row['odd key'] }}).",
        output_field="description",
        system_prompt="You are a travel guide.",
        sampling={"max_tokens": 33, "temperature": 0.25, "n": 2},
    )
    run = run_fake(t, tmp_path, lambda body: [f"{prompt_of(body)} #{i}" for i in range(body["n"])])
    assert run.outcome.status == "complete", run.outcome.message
    assert {b["max_tokens"] for b in run.bodies} == {33} and {b["temperature"] for b in run.bodies} == {0.25}
    assert sorted(prompt_of(b) for b in run.bodies) == [
        "Describe Lyon (France, x).",
        "Describe Porto (Portugal, y).",
    ]
    assert all(
        b["messages"][0] == {"role": "system", "content": "You are a travel guide."} for b in run.bodies
    )
    final = run.store("final_data")
    assert [r["row"] for r in final] == [rows[0], rows[0], rows[1], rows[1]]  # whole rows, `id` too
    assert [r["description"] for r in final[:2]] == [
        "Describe Lyon (France, x). #0",
        "Describe Lyon (France, x). #1",
    ]
    assert final[1]["lineage"]["sample"] == 1 and all(r["model_name"] == "fake" for r in final)
    assert set(final[0]) == {"task_name", "is_seed", "id", "lineage", "row", "description", "model_name"}


def test_inference_column_and_completion_mode(tmp_path: Path) -> None:
    rows = [{"question": "2 + 2 ="}, {"question": "Capital of Peru:"}, {"question": "Say nothing:"}]
    t = task("inf/completion", "inference", rows, input_field="question", mode="completion")
    run = run_fake(
        t, tmp_path, lambda body: ["" if "nothing" in body["prompt"] else f" {body['prompt']} done"]
    )
    assert run.outcome.status == "complete", run.outcome.message
    assert all(p.endswith("/completions") and not p.endswith("chat/completions") for p in run.paths)
    assert sorted(b["prompt"] for b in run.bodies) == sorted(r["question"] for r in rows)
    final = run.store("final_data")
    assert [r["output"] for r in final] == ["2 + 2 = done", "Capital of Peru: done"]
    [rejected] = run.store("rejected")
    assert rejected["reason"] == "empty output" and rejected["record"]["raw"]["row"] == rows[2]


def test_inference_columns_mapping_from_a_file(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"body": f"text {i}", "n": i}) + "\n" for i in range(3)))
    t = task("inf/file", "inference", [], prompt_template=None)
    t.pop("prompt_template")
    t["data"] = {"data_path": str(data), "columns": {"text": "body"}}
    run = run_fake(t, tmp_path, lambda body: [prompt_of(body).upper()])
    assert run.outcome.status == "complete", run.outcome.message
    final = run.store("final_data")
    assert [r["output"] for r in final] == ["TEXT 0", "TEXT 1", "TEXT 2"]
    assert final[1]["row"] == {"text": "text 1", "n": 1}  # mapped onto the prompt field


def test_inference_sampling_per_task_and_per_builder_from_the_override_file(tmp_path: Path) -> None:
    t = task("inf/ov", "inference", [{"text": "Hello"}], sampling={"max_tokens": 50, "top_p": 0.9})
    override = {
        "builders": {"inference": {"blocks": [{"name": "llm1", "sampling": {"temperature": 0.5}}]}},
        "tasks": {"inf/ov": {"sampling": {"max_tokens": 11}}},
    }
    run = run_fake(t, tmp_path, lambda body: ["Hi."], override=override)
    assert run.outcome.status == "complete", run.outcome.message
    [body] = run.bodies
    # the builder's block (override: temperature), the task's (top_p), the override's task layer
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (11, 0.5, 0.9)


# ---- evol_complexity ------------------------------------------------------------------------

ORIGINAL = re.compile(r"Instruction: (.*)$")


def test_evol_complexity_rejects_each_unusable_rewrite_with_its_reason(tmp_path: Path) -> None:
    outputs = {
        "Alpha": "{orig} Answer in under 50 words for a child.",  # usable
        "Bravo": "{orig}",  # identical
        "Charlie": "You make instructions for an AI assistant harder to answer well.",  # echo
        "Delta": "Here is the harder instruction about kites and wind today",  # meta
        "Echo": "kites fly high kites fly high kites fly high in wind",  # loops
        "Foxtrot": "12345 67890",  # no words
        "Golf": "Describe the history of pottery glazes in Japan and Korea.",  # drifts
        "Hotel": "Hotel: why do kites fly high in wind?",  # shorter
    }

    def reply(body: dict[str, Any]) -> list[str]:
        orig = ORIGINAL.search(prompt_of(body)).group(1)  # type: ignore[union-attr]
        return [as_json("instruction", outputs[orig.split()[0]].format(orig=orig))]

    rows = [{"instruction": f"{word} asks why kites fly so high in the wind."} for word in outputs]
    run = run_fake(task("evol/c", "evol_complexity", rows, attempts=1), tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    [record] = run.store("final_data")
    assert record["evolved_instruction"].endswith("Answer in under 50 words for a child.")
    assert record["operator"] in ("add_constraints", "deepen", "concretize", "increase_reasoning")
    assert record["model_name"] == "fake" and record["lineage"]["attempts"] == 1
    reasons = {r["record"]["raw"]["instruction"].split()[0]: r["reason"] for r in run.store("rejected")}
    assert reasons == {
        "Bravo": "identical to the original instruction",
        "Charlie": "the model echoed the prompt instead of rewriting the instruction",
        "Delta": "talks about the rewriting ('harder instruction') instead of being an instruction",
        "Echo": "repeats itself",
        "Foxtrot": "empty instruction",
        "Golf": "drifts from the original: keeps 0% of its content words (min_overlap 0.5)",
        "Hotel": "shorter than the original: a harder instruction keeps what it asks and adds to it",
    }
    assert all(r["block"] == "evol_complexity" for r in run.store("rejected"))


def test_evol_complexity_retries_with_another_operator(tmp_path: Path) -> None:
    seen: list[str] = []

    def reply(body: dict[str, Any]) -> list[str]:
        prompt = prompt_of(body)
        orig = ORIGINAL.search(prompt).group(1)  # type: ignore[union-attr]
        seen.append(prompt.splitlines()[1])  # the operator's sentence
        return [as_json("instruction", orig if len(seen) == 1 else f"{orig} Compare two cases.")]

    rows = [{"instruction": "Explain how rainbows form after rain."}]
    t = task("evol/retry", "evol_complexity", rows, attempts=2, operators=["deepen", "concretize"])
    run = run_fake(t, tmp_path, reply)
    [record] = run.store("final_data")
    [rejected] = run.store("rejected")
    assert rejected["reason"] == "identical to the original instruction"
    assert {rejected["record"]["raw"]["operator"], record["operator"]} == {"deepen", "concretize"}
    assert seen[0] != seen[1]  # the second try used the other operator's prompt
    assert record["lineage"]["attempts"] == 2 and record["lineage"]["tokens"]["completion"] == 14


# ---- evol_quality ---------------------------------------------------------------------------

RESPONSE = re.compile(r"Response: (.*)$", re.S)


def test_evol_quality_rejects_a_rewrite_that_drops_the_original(tmp_path: Path) -> None:
    original = "Boil the egg for 6 minutes, then cool it in iced water so the yolk stays soft."
    rewrites = iter(
        [
            "Cook the egg briefly and enjoy your breakfast with toast.",  # drops content
            "Boil the egg for minutes, then cool it in iced water so the yolk stays soft.",  # drops 6
            "Boil the egg for 6 minutes, then cool it in iced water so the yolk stays soft and jammy; "
            "peel it under running water.",
        ]
    )

    def reply(body: dict[str, Any]) -> list[str]:
        assert RESPONSE.search(prompt_of(body)).group(1).strip() == original  # type: ignore[union-attr]
        return [as_json("response", next(rewrites))]

    rows = [{"instruction": "How do I boil an egg with a soft yolk?", "response": original}]
    t = task("evol/q", "evol_quality", rows, attempts=3, aspects={"details": 1, "helpfulness": 1, "depth": 1})
    run = run_fake(t, tmp_path, reply)
    assert run.outcome.status == "complete", run.outcome.message
    [record] = run.store("final_data")
    assert record["evolved_response"].endswith("peel it under running water.")
    assert record["response"] == original and record["faithfulness"] == 1.0 and record["model_name"] == "fake"
    rejected = run.store("rejected")
    assert [r["reason"] for r in rejected] == [
        "drops the original's content: keeps 10% of its content words (min_overlap 0.6)",
        "drops the number 6 the original gives",
    ]
    aspects = [r["record"]["raw"]["aspect"] for r in rejected] + [record["aspect"]]
    assert sorted(aspects) == ["depth", "details", "helpfulness"]  # another aspect each try
    assert rejected[0]["record"]["raw"]["faithfulness"] == 0.1


def test_evol_quality_unusable_rewrites(tmp_path: Path) -> None:
    outputs = {
        "Alpha": "{orig}",
        "Bravo": "Here is the improved response: {orig}",
        "Charlie": "Stay faithful to the instruction. Keep every fact, number and point of the response.",
    }

    def reply(body: dict[str, Any]) -> list[str]:
        orig = RESPONSE.search(prompt_of(body)).group(1).strip()  # type: ignore[union-attr]
        return [as_json("response", outputs[orig.split()[0]].format(orig=orig))]

    rows = [
        {"instruction": "Say something.", "response": f"{w} is a word used in radio spelling."}
        for w in outputs
    ]
    run = run_fake(task("evol/q2", "evol_quality", rows, attempts=1, min_overlap=0.0), tmp_path, reply)
    assert run.store("final_data") == []
    reasons = {r["record"]["raw"]["response"].split()[0]: r["reason"] for r in run.store("rejected")}
    assert reasons == {
        "Alpha": "identical to the original response",
        "Bravo": "talks about the rewriting ('improved response') instead of answering the user",
        "Charlie": "the model echoed the prompt instead of rewriting the response",
    }
