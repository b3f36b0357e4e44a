"""``conversation`` grounded in documents, on the real default model: the example task's
conversations are each about two documents of one service, kept in the record with their
lineage, and steered by user patterns. The prompts' contents and the exact draws are checked
against a scripted server in tests/compat/test_fmsdgt_conversation.py."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]

EXAMPLE = REPO / "tasks/examples/conversation_rag/task.yaml"
DOCUMENTS = EXAMPLE.parent / "documents/city_services.jsonl"
REASONS = ("answer cut at", "empty ", "user message cut at", "scenario cut at")


def test_the_example_makes_grounded_conversations(run_example: RunExample) -> None:
    rt, outcome = run_example(EXAMPLE, target=2)
    assert outcome.status == "complete", outcome.message
    task = yaml.safe_load(EXAMPLE.read_text())
    source = {d["id"]: d for d in map(json.loads, DOCUMENTS.read_text().splitlines())}
    patterns = {p["name"] for p in task["user_patterns"]}
    final = read_jsonl(rt.output_dir / "examples/conversation_rag/final_data.jsonl")
    assert len(final) == 2
    for record in final:
        documents = record["documents"]
        assert len(documents) == 2
        assert len({source[d["id"]]["domain"] for d in documents}) == 1  # one service per conversation
        for document in documents:
            assert document["title"] == source[document["id"]]["title"]
            assert document["text"] in source[document["id"]]["text"]
        messages = record["messages"]
        assert messages[0] == {"role": "system", "content": task["assistant_system"]}
        assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * record["num_turns"]
        assert all(m["content"] and m["content"] == m["content"].strip() for m in messages)
        lineage = record["lineage"]
        assert lineage["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert [d["id"] for d in lineage["documents"]] == [d["id"] for d in documents]
        assert all(d["file"] == "documents/city_services.jsonl" for d in lineage["documents"])
        drawn = lineage["patterns"]
        assert len(drawn) == record["num_turns"] and set(drawn) <= patterns
        assert "goodbye" not in drawn[:-1]
        if drawn[-1] == "goodbye":
            assert record["ended_by"] == "controller" and record["num_turns"] >= task["min_turns"]
        else:
            assert record["ended_by"] == "length" and record["num_turns"] == task["max_turns"]
        assert len(lineage["icl_ids"]) == 1
    rejected = rt.output_dir / "examples/conversation_rag/rejected.jsonl"
    for rejection in read_jsonl(rejected) if rejected.exists() else []:
        if rejection["block"] == "conversation":
            assert rejection["reason"].startswith(REASONS), rejection
            assert len(rejection["record"]["raw"]["documents"]) == 2
        else:
            assert rejection["block"] == "dedup", rejection
