"""``conversation`` mechanics against a scripted loopback OpenAI-compatible server: the rule
controller ends a conversation once the person says thanks (never before ``min_turns``), a
user message cut at max_tokens keeps its complete sentences, labels and quotes a
role-playing model adds are removed, and an answer cut at max_tokens rejects the whole
conversation with the reason and the conversation so far (or, with ``trim_cut_answers``,
keeps its complete sentences)."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.config.overrides import Overrides
from fms_dgt.runtime import Runtime
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer, canned_response

CASE = re.compile(r"(?:Case|Tap) (\d+)")


class Scripted:
    def __init__(self) -> None:
        self.cases = 0
        self.lock = threading.Lock()

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        last = messages[-1]["content"]
        cut = False
        if "Describe in one or two sentences" in last:
            with self.lock:
                self.cases += 1
                text = f"Case {self.cases}: a leaking tap."
        elif "You play a person" in last:
            case = int(CASE.search(last).group(1))  # type: ignore[union-attr]
            if "The conversation so far" not in last:
                text = f'Person: "Tap {case} leaks. What do I do?"'
                if case % 4 == 0:  # cut mid-sentence: the complete sentence is kept
                    text, cut = f"Tap {case} leaks. It drips all night and I can", True
            else:
                text = "Thanks, that fixed it!"
        else:
            text = "Close the valve under the sink."
            if sum(1 for m in messages if m["role"] == "user") == 1 and self.cases % 5 == 0:
                text, cut = "Close the valve under the sink. Then open the", True
        reply = canned_response(path, body, text)
        if cut:
            reply["choices"][0]["finish_reason"] = "length"
        return reply


@pytest.mark.parametrize("trim", [False, True])
def test_rule_controller_cut_messages_and_rejections(tmp_path: Path, trim: bool) -> None:
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "task.yaml").write_text(
        yaml.safe_dump(
            {
                "task_name": "conv",
                "task_description": "Repairs at home.",
                "created_by": "tests",
                "data_builder": "conversation",
                "samplers": {"persona": {"type": "category", "values": ["A plumber.", "A cook."]}},
                "min_turns": 2,
                "max_turns": 4,
                "trim_cut_answers": trim,
                "runner_config": {"num_outputs_to_generate": 6, "max_concurrent_calls": 1, "seed": 1},
            }
        )
    )
    with FaultServer(responder=Scripted()) as server:
        engine = {"type": "openai", "base_url": server.url, "model": "fake", "max_retries": 0}
        rt = Runtime([str(folder)], [], output_dir=tmp_path / "out", overrides=Overrides(engine=engine))
        rt.prepare()
        (outcome,) = asyncio.run(rt.run())
    assert outcome.status == "complete", outcome.message
    final = read_jsonl(rt.output_dir / "conv/final_data.jsonl")
    assert len(final) == 6
    for record in final:
        assert record["persona"] in ("A plumber.", "A cook.")
        assert record["lineage"]["samples"]["persona"] == record["persona"]
        assert record["num_turns"] == 2  # the thanks ends it at min_turns, or its planned length does
        planned = record["lineage"]["planned_turns"]
        assert record["ended_by"] == ("controller" if planned > 2 else "length"), record
        case = int(CASE.search(record["scenario"]).group(1))  # type: ignore[union-attr]
        first, _, second, _ = record["messages"]  # no system message: none configured
        cut = case % 4 == 0
        assert first["content"] == f"Tap {case} leaks." + ("" if cut else " What do I do?")
        assert second["content"] == "Thanks, that fixed it!"
    assert any(r["messages"][0]["content"].endswith("leaks.") for r in final)
    assert {r["ended_by"] for r in final} == {"controller", "length"}
    answers = [r["messages"][1]["content"] for r in final]
    assert set(answers) <= {"Close the valve under the sink."}  # a trimmed one included
    trimmed = [r for r in final if r["lineage"].get("trimmed_answers")]
    rejected_path = rt.output_dir / "conv/rejected.jsonl"
    if trim:  # the cut answer keeps its complete sentence; nothing is rejected
        assert trimmed and not rejected_path.exists()
        return
    assert not trimmed
    rejected = read_jsonl(rejected_path)
    assert rejected and all(r["block"] == "conversation" for r in rejected)
    for rejection in rejected:
        assert rejection["reason"] == "answer cut at max_tokens"
        raw = rejection["record"]["raw"]
        assert raw["scenario"].startswith("Case ") and raw["messages"][-1]["role"] == "user"
        assert raw["text"] == "Close the valve under the sink. Then open the"
