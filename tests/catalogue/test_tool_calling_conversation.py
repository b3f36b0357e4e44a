"""``tool_calling`` with simulated tools and one or two user turns, on the real default
model: its example task (tasks/examples/tool_calling_simulated), a small target. The calls
and the simulated results are steered by JSON schemas (vLLM's structured output), and every
kept conversation is checked here again: each call names a tool of the record and its
arguments validate against that tool's parameters, each tool message is JSON valid for the
tool's ``returns`` schema, the number of user turns is the one drawn for the conversation.
Exact outcomes (rejection reasons, what the simulator is shown) are tested against a
scripted model in test_tool_calling_simulated.py."""

from __future__ import annotations

import json

import pytest

from data_builders.tool_calling.tools import call_problem, schema_problem
from tests.catalogue.conftest import REPO, RunExample
from tests.catalogue.test_tool_calling_mechanics import check_openai_messages
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

TASK = REPO / "tasks/examples/tool_calling_simulated/task.yaml"
KINDS = {
    ("tool_calling", "malformed call"),
    ("tool_calling", "schema violation"),
    ("tool_calling", "no final answer"),
    ("tool_simulation", "simulation failed"),
}


@pytest.mark.timeout(1200)
def test_simulated_conversations_are_valid_turn_by_turn(run_example: RunExample) -> None:
    rt, outcome = run_example(TASK, target=2, max_concurrent_calls=2, max_stalled_attempts=2)
    assert outcome.status in ("complete", "stalled"), outcome.message
    task_dir = rt.output_dir / "examples/tool_calling_simulated"
    kept = read_jsonl(task_dir / "data.jsonl") if (task_dir / "data.jsonl").exists() else []
    rejected_path = task_dir / "rejected.jsonl"
    rejected = read_jsonl(rejected_path) if rejected_path.exists() else []
    assert kept, f"no conversation kept; rejections: {[r['reason'] for r in rejected][:5]}"
    assert (outcome.status == "complete") == (len(kept) >= 2)
    task = rt.prepared[0].task  # type: ignore[attr-defined]
    for record in kept:
        check_openai_messages(record["messages"], record["tools"])
        lineage = record["lineage"]
        assert lineage["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert lineage["tool_execution"] == "simulated" and lineage["turns"] in (1, 2)
        assert sum(m["role"] == "user" for m in record["messages"]) == lineage["turns"]
        assert lineage["samples"]["persona"] in ("a student", "a retired teacher", "a small shop owner")
        names: dict[str, str] = {}
        for message in record["messages"]:
            for call in message.get("tool_calls") or ():
                name, arguments = call["function"]["name"], json.loads(call["function"]["arguments"])
                assert call_problem({"name": name, "arguments": arguments}, task.tools_by_name) is None
                names[call["id"]] = name
            if message["role"] == "tool":
                returns = task.tools_by_name[names[message["tool_call_id"]]].returns
                assert schema_problem(returns, json.loads(message["content"]), "(result)") is None
        assert all(c["via"] == "simulated" for e in lineage["execution"] for c in e["calls"])
    # the example's seed draws two turns for most conversations (1 or 2 by min/max_turns)
    assert any(r["lineage"]["turns"] == 2 for r in kept), [r["lineage"]["turns"] for r in kept]
    for rejection in rejected:
        if rejection["block"] in ("tool_calling", "tool_simulation"):
            kind = (rejection["block"], rejection["reason"].split(":")[0])
            assert kind in KINDS, rejection["reason"]
            assert rejection["record"]["raw"]["messages"][0]["role"] == "system", rejection
