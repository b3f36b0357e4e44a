"""The ``tool_calling`` builder on the real default model: its example task, a small target.
A 135M model often calls a tool with a wrong argument or a value outside an enum; the point
is the mechanics: every exchange is either kept, with calls that match their schemas and
whose tool messages are what the implementation really returns, or rejected with one of
the builder's reasons and the raw output. Exact outcomes are tested against a scripted
model in test_tool_calling_mechanics.py."""

from __future__ import annotations

import asyncio
import json

import pytest

from data_builders.tool_calling.execute import as_content
from data_builders.tool_calling.tools import call_problem
from fms_dgt.sandbox import run_callable
from tests.catalogue.conftest import REPO, RunExample
from tests.catalogue.test_tool_calling_mechanics import check_openai_messages
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

TASK = REPO / "tasks/examples/tool_calling/task.yaml"
KINDS = {
    ("tool_calling", "malformed call"),
    ("tool_calling", "schema violation"),
    ("tool_calling", "no final answer"),
    ("tool_execution", "execution failed"),
    ("tool_judge", "judge disagrees"),
    ("tool_judge", "judge answer unusable"),
}


@pytest.mark.timeout(1200)
def test_exchanges_are_kept_only_when_their_calls_check_out(run_example: RunExample) -> None:
    # one window without a kept exchange ends the task (as stalled): the 135M model rarely
    # writes a whole valid one, and the point here is what happens to what it writes
    rt, outcome = run_example(TASK, target=2, max_concurrent_calls=2, max_stalled_attempts=1)
    assert outcome.status in ("complete", "stalled"), outcome.message
    task_dir = rt.output_dir / "examples/tool_calling"
    kept = read_jsonl(task_dir / "data.jsonl") if (task_dir / "data.jsonl").exists() else []
    rejected_path = task_dir / "rejected.jsonl"
    rejected = read_jsonl(rejected_path) if rejected_path.exists() else []
    assert kept or rejected, "the model produced nothing at all"
    assert (outcome.status == "complete") == (len(kept) >= 2)
    task = rt.prepared[0].task  # type: ignore[attr-defined]
    for record in kept:
        check_openai_messages(record["messages"], record["tools"])
        assert record["tools"] == [t.definition for t in task.tools]
        assert record["lineage"]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert record["lineage"]["judge"]["verdict"] == "yes"
        results = {m["tool_call_id"]: m["content"] for m in record["messages"] if m["role"] == "tool"}
        for message in record["messages"]:
            for call in message.get("tool_calls") or ():
                name, arguments = call["function"]["name"], json.loads(call["function"]["arguments"])
                assert call_problem({"name": name, "arguments": arguments}, task.tools_by_name) is None
                # the tool message is what the implementation returns: run it again
                target = task.tools_by_name[name].implementation
                again = asyncio.run(
                    run_callable(target, arguments, task.limits, python_path=task.python_path)
                )
                assert again.ok and as_content(again.value) == results[call["id"]]
    for rejection in rejected:
        if rejection["block"] in ("tool_calling", "tool_execution", "tool_judge"):
            kind = (rejection["block"], rejection["reason"].split(":")[0])
            assert kind in KINDS, rejection["reason"]
            assert rejection["record"]["raw"], rejection
