"""``tool_calling`` mechanics against a scripted model (tests/catalogue/scripted_model.py):
in every five generations one malformed call, one schema violation and one failing
execution; exactly those are rejected, each with its reason and the raw output, and the
rest (single, parallel, multi-step, one tool served over HTTP by a loopback server) are
kept as valid OpenAI tool-call chat messages. The same builder runs on the real model in
test_tool_calling.py."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.catalogue.scripted_model import run_scripted
from tests.support.fault_server import FaultServer

IMPLEMENTATION = """
def add(a, b):
    return a + b

def double(n):
    return {"value": n * 2}

def divide(a, b):
    return a / b
"""


def number(name: str) -> dict[str, Any]:
    return {"type": "number", "description": name}


def tools(endpoint: str) -> list[dict[str, Any]]:
    def fn(name: str, properties: dict[str, Any], **how: str) -> dict[str, Any]:
        parameters = {"type": "object", "properties": properties, "required": list(properties)}
        return {
            "type": "function",
            "function": {"name": name, "description": f"{name}.", "parameters": parameters},
            **how,
        }

    return [
        fn("add", {"a": number("a"), "b": number("b")}, implementation="mtools:add"),
        fn("double", {"n": number("n")}, implementation="mtools:double"),
        fn("divide", {"a": number("a"), "b": number("b")}, implementation="mtools:divide"),
        fn("weather", {"city": {"type": "string", "enum": ["Paris", "Lima"]}}, endpoint=endpoint),
    ]


def plan(request: str, *calls: tuple[str, dict[str, Any]]) -> str:
    return json.dumps({"request": request, "calls": [{"name": n, "arguments": a} for n, a in calls]})


# (kind, first answer); each five holds one malformed call, one schema violation, one failure
SCRIPT = [
    ("single", plan("What is 2 plus 3?", ("add", {"a": 2, "b": 3}))),
    ("malformed", '{"request": "What is 4 plus 4?", "calls": [{"name": "add", "arguments": {"a": 4'),
    ("schema", plan("Add 2 to something.", ("add", {"a": 2}))),
    ("execution", plan("What is 1 divided by 0?", ("divide", {"a": 1, "b": 0}))),
    (
        "parallel",
        plan("Weather in Paris, and 5 plus 6?", ("weather", {"city": "Paris"}), ("add", {"a": 5, "b": 6})),
    ),
    ("http", plan("Is it warm in Lima today?", ("weather", {"city": "Lima"}))),
    ("malformed", '{"request": "Double 7 please.", "calls": [{"arguments": {"n": 7}}]}'),
    ("schema", plan("Weather in Berlin?", ("weather", {"city": "Berlin"}))),
    ("execution", plan("Divide 5 by 0.", ("divide", {"a": 5, "b": 0}))),
    ("multi-step", plan("Double 4, then add 1 to the result.", ("double", {"n": 4}))),
]
SECOND_STEP = {"Double 4, then add 1 to the result.": [{"name": "add", "arguments": {"a": 8, "b": 1}}]}
WEATHER = {"Paris": {"temperature_c": 11}, "Lima": {"temperature_c": 19}}


def answer_for(script: list[tuple[str, str]]) -> Any:
    calls = itertools.count()

    def answer(prompt: str, structured: bool) -> str:
        if prompt.startswith("You write training data"):
            return script[next(calls)][1]
        if "If answering the request needs further calls" in prompt:
            request = prompt.split("\n\n")[1].strip()
            done = "add(" in prompt  # the second step was made
            return json.dumps({"calls": [] if done else SECOND_STEP.get(request, [])})
        if prompt.startswith("You check training data"):
            return json.dumps({"verdict": "yes", "reason": "the calls fetch what is asked"})
        assert prompt.startswith("A user asked"), prompt
        return "Here is your answer, from the results."

    return answer


def check_openai_messages(messages: list[dict[str, Any]], definitions: list[dict[str, Any]]) -> None:
    """Every message is an OpenAI chat message: first a system message holding the tool
    definitions, then user turns; each tool call is answered by one ``tool`` message with
    its id, right after the assistant message that made it, and each turn ends with the
    assistant's answer."""
    names = {d["function"]["name"] for d in definitions}
    system, messages = messages[0], messages[1:]
    assert system["role"] == "system" and json.loads(system["content"].split("\n", 1)[1]) == definitions
    assert messages[0]["role"] == "user" and isinstance(messages[0]["content"], str)
    assert messages[-1] == {"role": "assistant", "content": messages[-1]["content"]}
    assert isinstance(messages[-1]["content"], str) and messages[-1]["content"]
    pending: list[str] = []
    for message in messages[1:-1]:
        if message["role"] == "user":  # a new turn: the last one was answered
            assert not pending and isinstance(message["content"], str)
        elif message["role"] == "assistant" and not message.get("tool_calls"):
            assert not pending and isinstance(message["content"], str) and message["content"]
        elif message["role"] == "assistant":
            assert (
                not pending
                and set(message) == {"role", "content", "tool_calls"}
                and message["content"] is None
            )
            for call in message["tool_calls"]:
                assert set(call) == {"id", "type", "function"} and call["type"] == "function"
                assert call["function"]["name"] in names
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                pending.append(call["id"])
        else:
            assert message["role"] == "tool" and set(message) == {"role", "tool_call_id", "content"}
            assert message["tool_call_id"] == pending.pop(0) and isinstance(message["content"], str)
    assert not pending
    all_ids = [c["id"] for m in messages if m.get("tool_calls") for c in m["tool_calls"]]
    assert len(all_ids) == len(set(all_ids))


def _task(folder: Path, endpoint: str, **extra: Any) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mtools.py").write_text(IMPLEMENTATION)
    return {
        "task_name": "tool_calling/mechanics",
        "task_description": "Arithmetic and weather.",
        "created_by": "tests",
        "data_builder": "tool_calling",
        "tools": tools(endpoint),
        "max_steps": 2,
        "max_calls": 3,
        "sandbox": {"cpu_seconds": 1, "wall_seconds": 5, "memory_mb": 256},
        **extra,
    }


def test_exactly_the_bad_calls_are_rejected(tmp_path: Path) -> None:
    posted: list[tuple[str, dict[str, Any]]] = []

    def weather(path: str, body: dict[str, Any]) -> dict[str, Any]:
        posted.append((path, body))
        return {"city": body["city"], **WEATHER[body["city"]]}

    with FaultServer(responder=weather) as tool_server:
        task = _task(tmp_path / "task", tool_server.url + "/weather")
        run = run_scripted(
            task, tmp_path, answer_for(SCRIPT), num_outputs_to_generate=4, max_concurrent_calls=1
        )
    assert run.outcome.status == "complete", run.outcome.message
    assert sorted(b["city"] for _, b in posted) == ["Lima", "Paris"]  # HTTP tool really called
    assert all(p.endswith("/weather") for p, _ in posted)

    schema = run.bodies[0]["response_format"]["json_schema"]["schema"]
    one_of = schema["properties"]["calls"]["items"]["anyOf"]  # decoding is steered to the tools
    assert schema["properties"]["calls"]["minItems"] == 1 and schema["properties"]["calls"]["maxItems"] == 3
    assert [c["properties"]["name"]["enum"] for c in one_of] == [["add"], ["double"], ["divide"], ["weather"]]
    assert one_of[3]["properties"]["arguments"]["properties"]["city"]["enum"] == ["Paris", "Lima"]

    final = run.store("final_data")
    requests = [r["messages"][1]["content"] for r in final]
    assert requests == [json.loads(SCRIPT[i][1])["request"] for i in (0, 4, 5, 9)]
    definitions = [{"type": t["type"], "function": t["function"]} for t in tools("x")]
    for record in final:
        check_openai_messages(record["messages"], record["tools"])
        assert [d["function"]["name"] for d in record["tools"]] == [
            d["function"]["name"] for d in definitions
        ]
        assert all(set(d) == {"type", "function"} for d in record["tools"])  # no implementation shown
        assert record["lineage"]["judge"]["verdict"] == "yes"
    # accepted requests are shown as examples to later calls, besides the (absent) seeds
    calls_prompts = [
        p for p in (b["messages"][-1]["content"] for b in run.bodies) if p.startswith("You write")
    ]
    shown = calls_prompts[-1].split("Requests users made before:\n")[1].split("\n\n")[0].splitlines()
    assert len(shown) == 2 and all(line.removeprefix("- ") in requests[:3] for line in shown), shown
    single, parallel, http, multi = final
    assert [m["role"] for m in single["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert single["messages"][3]["content"] == "5"  # add(2, 3) ran in the sandbox
    assert single["lineage"]["execution"][0]["calls"][0]["via"] == "sandbox"
    assert len(parallel["messages"][2]["tool_calls"]) == 2
    assert [m["content"] for m in parallel["messages"][3:5]] == [
        '{"city": "Paris", "temperature_c": 11}',
        "11",
    ]
    assert http["lineage"]["execution"][0]["calls"][0]["via"] == "http"
    roles = [m["role"] for m in multi["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert multi["messages"][3]["content"] == '{"value": 8}' and multi["messages"][5]["content"] == "9"

    rejected = run.store("rejected")
    kinds = Counter((r["block"], r["reason"].split(":")[0]) for r in rejected)
    assert kinds == {
        ("tool_calling", "malformed call"): 2,
        ("tool_calling", "schema violation"): 2,
        ("tool_execution", "execution failed"): 2,
    }
    reasons = sorted(r["reason"] for r in rejected)
    assert any("'b' is a required property" in r for r in reasons)
    assert any("'Berlin' is not one of ['Paris', 'Lima']" in r for r in reasons)
    assert sum("ZeroDivisionError" in r for r in reasons) == 2
    assert any(r.startswith("malformed call: calls.0.name: Field required") for r in reasons)
    for r in rejected:
        assert r["record"]["raw"]["output"] in [s for _, s in SCRIPT]  # the raw output is kept


def test_judge_no_and_judge_off(tmp_path: Path) -> None:
    script = [SCRIPT[0], SCRIPT[5]]
    answer = answer_for(script)

    def skeptical(prompt: str, structured: bool) -> str:
        if prompt.startswith("You check training data"):
            return json.dumps({"verdict": "no", "reason": "the user asked something else"})
        return answer(prompt, structured)

    with FaultServer(responder=lambda p, b: {"city": b["city"]}) as tool_server:
        task = _task(tmp_path / "task", tool_server.url + "/weather", max_steps=1)
        run = run_scripted(
            task,
            tmp_path,
            skeptical,
            num_outputs_to_generate=1,
            max_concurrent_calls=1,
            max_stalled_attempts=1,
        )
    assert run.store("final_data") == []
    reasons = [(r["block"], r["reason"]) for r in run.store("rejected")]
    assert ("tool_judge", "judge disagrees: the user asked something else") in reasons
    assert not any(
        "If answering the request needs further calls" in b["messages"][-1]["content"] for b in run.bodies
    )

    off = tmp_path / "off"
    task = _task(off / "task", "http://127.0.0.1:9/unused", judge=False)
    run = run_scripted(task, off, answer_for([SCRIPT[0]]), num_outputs_to_generate=1, max_concurrent_calls=1)
    assert run.outcome.status == "complete", run.outcome.message
    assert not any(b["messages"][-1]["content"].startswith("You check") for b in run.bodies)
    assert "judge" not in run.store("final_data")[0]["lineage"]


def test_an_endpoint_error_is_a_failed_execution(tmp_path: Path) -> None:
    # the HTTP tool's first answer is a 500, its second a normal one
    with FaultServer(
        script=["500", "ok"], responder=lambda p, b: {"city": b["city"], "sky": "clear"}
    ) as tool_server:
        task = _task(tmp_path / "task", tool_server.url + "/weather", max_steps=1, judge=False)
        script = [SCRIPT[5], SCRIPT[5]]
        run = run_scripted(
            task, tmp_path, answer_for(script), num_outputs_to_generate=1, max_concurrent_calls=1
        )
    assert run.outcome.status == "complete", run.outcome.message
    [rejected] = run.store("rejected")
    assert rejected["block"] == "tool_execution"
    assert rejected["reason"].startswith("execution failed: tool 'weather': HTTP 500\n")
    assert rejected["record"]["raw"]["evidence"][0]["calls"][0] == {
        "via": "http",
        "endpoint": tool_server.url + "/weather",
        "status": 500,
        "wall_seconds": rejected["record"]["raw"]["evidence"][0]["calls"][0]["wall_seconds"],
        "tool": "weather",
    }
    [kept] = run.store("final_data")
    assert kept["messages"][3]["content"] == '{"city": "Lima", "sky": "clear"}'


def test_a_result_breaking_returns_is_a_failed_execution(tmp_path: Path) -> None:
    with FaultServer(responder=lambda p, b: {"city": b["city"]}) as tool_server:
        task = _task(tmp_path / "task", tool_server.url + "/weather", max_steps=1, judge=False)
        task["tools"][3]["returns"] = {"type": "object", "required": ["temperature_c"]}
        run = run_scripted(
            task,
            tmp_path,
            answer_for([SCRIPT[5]]),
            num_outputs_to_generate=1,
            max_concurrent_calls=1,
            max_stalled_attempts=1,
        )
    assert run.store("final_data") == []
    [rejected] = run.store("rejected")
    assert rejected["block"] == "tool_execution"
    assert rejected["reason"] == (
        "execution failed: tool 'weather': the result breaks its returns schema: "
        "at (result): 'temperature_c' is a required property"
    )
