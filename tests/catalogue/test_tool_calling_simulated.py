"""``tool_calling`` with ``tool_execution: simulated`` and several user turns, against a
scripted model (tests/catalogue/scripted_model.py): the tools have no implementation, the
``tool_sim`` block writes their results. Checked: the turn structure of the messages, the
simulated results are what the simulator wrote and it was shown the arguments, the earlier
results and the tool's ``returns`` schema (as the decoding constraint too); an unknown tool
in turn 2, a result breaking ``returns`` and a result that is not JSON are rejected with
their reasons; a resumed run continues with the same plan. The real model runs the example
in test_tool_calling_conversation.py."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from tests.catalogue.scripted_model import run_scripted
from tests.catalogue.test_tool_calling_mechanics import check_openai_messages

STATUS = {"type": "string", "enum": ["pending", "shipped", "cancelled"]}
TOOLS = [
    {
        "function": {
            "name": "lookup_order",
            "description": "The status and total of an order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
        "returns": {
            "type": "object",
            "properties": {"status": STATUS, "total": {"type": "number"}},
            "required": ["status", "total"],
        },
    },
    {
        "function": {
            "name": "cancel_order",
            "description": "Cancel a pending order.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string"},
                    "reason": {"type": "string", "enum": ["no longer needed", "ordered by mistake"]},
                },
                "required": ["order_id", "reason"],
            },
        },
    },
]


def plan(request: str, name: str, arguments: dict[str, Any]) -> str:
    return json.dumps({"request": request, "calls": [{"name": name, "arguments": arguments}]})


def scripted(bad: dict[int, str] | None = None) -> Any:
    """Conversation ``i`` asks about order ``#W<i>``, then cancels it. ``bad``: conversation
    index -> what goes wrong in it (``unknown tool``, ``breaks returns``, ``not json``)."""
    bad = bad or {}
    firsts = itertools.count()

    def answer(prompt: str, structured: bool) -> str:
        if "The conversation so far:" in prompt:
            order = re.findall(r"#W\d+", prompt)[0]
            i = int(order[2:])
            name = "refund_everything" if bad.get(i) == "unknown tool" else "cancel_order"
            return plan(
                f"Please cancel {order}, I no longer need it.",
                name,
                {"order_id": order, "reason": "no longer needed"},
            )
        if prompt.startswith("You write training data"):
            i = next(firsts)
            if bad.get(i) == "malformed":
                return '{"request": "Where is my order?", "calls": [{"name": "lookup_order"'
            return plan(f"Where is my order #W{i}?", "lookup_order", {"order_id": f"#W{i}"})
        if prompt.startswith("You play a software function"):
            order = re.findall(r"It is now called as \w+\((.*)\)\.", prompt)[0]
            i = int(json.loads(order)["order_id"][2:])
            if "It is now called as lookup_order" in prompt:
                if bad.get(i) == "breaks returns":
                    return json.dumps({"status": "lost"})
                if bad.get(i) == "not json":
                    return "The order is on its way."
                return json.dumps({"status": "pending", "total": 40 + i})
            return json.dumps({"cancelled": True, "refund": 40 + i})
        if "If answering the request needs further calls" in prompt:
            return json.dumps({"calls": []})
        if prompt.startswith("You check training data"):
            return json.dumps({"verdict": "yes", "reason": "the call fetches what is asked"})
        assert prompt.startswith("A user asked"), prompt
        return "Done: " + prompt.split("\n\n")[1].strip()

    return answer


def _task(**extra: Any) -> dict[str, Any]:
    return {
        "task_name": "tool_calling/simulated",
        "task_description": "Orders of an online shop.",
        "created_by": "tests",
        "data_builder": "tool_calling",
        "tool_execution": "simulated",
        "tools": TOOLS,
        "min_turns": 2,
        "max_turns": 2,
        "max_steps": 2,
        "max_calls": 1,
        **extra,
    }


def test_conversations_of_two_turns_with_simulated_results(tmp_path: Path) -> None:
    run = run_scripted(_task(), tmp_path, scripted(), num_outputs_to_generate=2, max_concurrent_calls=1)
    assert run.outcome.status == "complete", run.outcome.message
    final = run.store("final_data")
    assert len(final) == 2 and not run.store("rejected")
    definitions = [{"type": "function", "function": t["function"]} for t in TOOLS]
    for i, record in enumerate(final):
        messages = record["messages"]
        check_openai_messages(messages, definitions)
        assert record["tools"] == definitions
        roles = [m["role"] for m in messages]
        assert roles == [
            "system",
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
            "assistant",
            "tool",
            "assistant",
        ]
        assert messages[1]["content"] == f"Where is my order #W{i}?"
        assert json.loads(messages[3]["content"]) == {"status": "pending", "total": 40 + i}
        assert messages[5]["content"] == f"Please cancel #W{i}, I no longer need it."
        assert messages[6]["tool_calls"][0]["function"]["name"] == "cancel_order"
        assert json.loads(messages[7]["content"]) == {"cancelled": True, "refund": 40 + i}
        lineage = record["lineage"]
        assert lineage["turns"] == 2 and lineage["tool_execution"] == "simulated"
        assert [(e["turn"], e["step"]) for e in lineage["execution"]] == [(1, 1), (2, 1)]
        assert all(
            c["via"] == "simulated" and c["engine"] == "tool_sim"
            for e in lineage["execution"]
            for c in e["calls"]
        )
        assert [v["verdict"] for v in lineage["judge"]] == ["yes", "yes"]
    sims = [b for b in run.bodies if b["messages"][-1]["content"].startswith("You play a software function")]
    lookup = next(b for b in sims if "called as lookup_order" in b["messages"][-1]["content"])
    # the simulator's decoding is steered to the tool's returns schema, else to an object
    assert lookup["response_format"]["json_schema"]["schema"] == TOOLS[0]["returns"]
    cancel = next(b for b in sims if "called as cancel_order" in b["messages"][-1]["content"])
    assert cancel["response_format"]["json_schema"]["schema"] == {"type": "object"}
    # ... and shown the earlier results, so that made-up values stay the same
    text = cancel["messages"][-1]["content"]
    assert 'lookup_order({"order_id": "#W0"}) -> {"status": "pending", "total": 40}' in text
    # the tools are listed briefly (the schemas steer the decoding and check the calls)
    first = run.bodies[0]["messages"][-1]["content"]
    assert (
        "- lookup_order: The status and total of an order. Arguments: order_id (string, required)\n" in first
    )
    assert 'reason (string, required, one of "no longer needed" | "ordered by mistake")' in first
    # the second turn's prompt holds the first turn
    follow = next(
        b["messages"][-1]["content"]
        for b in run.bodies
        if "The conversation so far:" in b["messages"][-1]["content"]
    )
    assert "User: Where is my order #W0?\nAssistant: Done: Where is my order #W0?" in follow


def test_invalid_calls_and_results_are_rejected_with_reasons(tmp_path: Path) -> None:
    bad = {1: "unknown tool", 2: "breaks returns", 3: "not json", 4: "malformed"}
    run = run_scripted(_task(), tmp_path, scripted(bad), num_outputs_to_generate=2, max_concurrent_calls=1)
    assert run.outcome.status == "complete", run.outcome.message
    kept = [r["messages"][1]["content"] for r in run.store("final_data")]
    assert kept == ["Where is my order #W0?", "Where is my order #W5?"]
    rejected = run.store("rejected")
    assert Counter(r["block"] for r in rejected) == {"tool_calling": 2, "tool_simulation": 2}
    [malformed] = [r for r in rejected if r["reason"].startswith("malformed call")]
    assert malformed["reason"].startswith("malformed call: turn 1: (answer): Invalid JSON")
    [unknown] = [r for r in rejected if r["reason"].startswith("schema violation")]
    assert unknown["reason"].startswith("schema violation: turn 2: unknown tool 'refund_everything'")
    assert "(tools: cancel_order, lookup_order)" in unknown["reason"]
    assert [m["role"] for m in unknown["record"]["raw"]["messages"]][-2:] == ["assistant", "user"]
    broken, not_json = sorted(
        (r for r in rejected if r["block"] == "tool_simulation"), key=lambda r: r["reason"]
    )
    assert broken["reason"].startswith(
        "simulation failed: turn 1: tool 'lookup_order': the result breaks its returns schema: at (result): "
    )
    assert broken["record"]["raw"]["evidence"][0]["calls"][0]["via"] == "simulated"
    assert not_json["reason"].startswith(
        "simulation failed: turn 1: tool 'lookup_order': the result is not JSON"
    )
    assert "The order is on its way." in not_json["reason"]


def test_a_resumed_run_continues_the_same_plan(tmp_path: Path) -> None:
    task = _task(min_turns=1, max_turns=2, judge=False)
    first = run_scripted(task, tmp_path, scripted(), num_outputs_to_generate=2, max_concurrent_calls=1)
    assert first.outcome.status == "complete", first.outcome.message
    before = first.store("data")
    # the runtime resumes from data.jsonl: the scripted model's conversation counter starts
    # again, so later conversations reuse order numbers; the point is the records kept
    second = run_scripted(task, tmp_path, scripted(), num_outputs_to_generate=4, max_concurrent_calls=1)
    assert second.outcome.status == "complete", second.outcome.message
    after = second.store("data")
    assert after[: len(before)] == before and len(after) >= 4
    assert len({r["id"] for r in after}) == len(after)
    # each conversation has the number of turns its call index draws, in both runs
    turns = Counter(r["lineage"]["turns"] for r in after)
    assert set(turns) <= {1, 2}
    users = [sum(m["role"] == "user" for m in r["messages"]) for r in after]
    assert users == [r["lineage"]["turns"] for r in after]
    assert "judge" not in after[0]["lineage"]
