"""``conversation`` on the real default model: whole multi-turn conversations (persona,
scenario, alternating turns) from the example task. SIGKILL-and-resume is proved against a
scripted server in test_conversation_resume.py."""

from __future__ import annotations

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

# a conversation is 5-8 requests in a row; on 2 busy CPU cores that can pass the default
# 600 s per test
pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]

EXAMPLE = REPO / "tasks/examples/conversation/task.yaml"
REASONS = ("answer cut at", "empty ", "user message cut at", "scenario cut at")


def test_the_example_makes_whole_conversations(run_example: RunExample) -> None:
    rt, outcome = run_example(EXAMPLE, target=2)
    assert outcome.status == "complete", outcome.message
    task = yaml.safe_load(EXAMPLE.read_text())
    personas = {
        p if isinstance(p, str) else "; ".join(f"{k}: {v}" for k, v in p.items()) for p in task["personas"]
    }
    final = read_jsonl(rt.output_dir / "examples/conversation/final_data.jsonl")
    assert len(final) == 2
    for record in final:
        assert record["persona"] in personas and record["scenario"]
        messages = record["messages"]
        assert messages[0] == {"role": "system", "content": task["assistant_system"]}
        chat = messages[1:]
        assert [m["role"] for m in chat] == ["user", "assistant"] * record["num_turns"]
        assert task["min_turns"] <= record["num_turns"] <= task["max_turns"]
        assert all(m["content"] and m["content"] == m["content"].strip() for m in chat)
        lineage = record["lineage"]
        assert lineage["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and lineage["engine"] == "llm1"
        assert lineage["samples"]["topic"] in task["samplers"]["topic"]["values"]
        assert lineage["tokens"]["completion"] > 0
        if record["ended_by"] == "length":
            assert record["num_turns"] == lineage["planned_turns"]
        else:
            assert record["ended_by"] == "controller" and record["num_turns"] < lineage["planned_turns"]
    rejected = rt.output_dir / "examples/conversation/rejected.jsonl"
    for rejection in read_jsonl(rejected) if rejected.exists() else []:
        if rejection["block"] == "conversation":
            assert rejection["reason"].startswith(REASONS), rejection
            assert rejection["record"]["raw"]["persona"] in personas
        else:
            assert rejection["block"] == "dedup", rejection
