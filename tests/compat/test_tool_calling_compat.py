"""IBM fms-dgt ``tool_calling/multi_turn/stateless`` task files under our ``tool_calling``
builder (its alias), with every tool played by a model. The task files in
``fmsdgt/tool_calling/`` are written in their format for these tests, their tool files in
their shapes under ``fmsdgt/data/tool_calling`` (reached through ``${DGT_DATA_DIR}``).

Checked: their fields land on our settings (has_nested -> max_steps, verifier -> judge,
sampler k -> tools_per_conversation, persona store -> persona sampler, output_parameters
-> returns, min/max_turns), every unused field is one located warning, tools left out are
counted, a run on a scripted model writes conversations of their turns with the persona
in the prompts, and their two formatter names give our formatters' output."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from data_builders.tool_calling.task import ToolCallingTask
from fms_dgt.config.overrides import Overrides
from fms_dgt.formatters.tools import ToolCallsFormatter, ToolConversationFormatter
from fms_dgt.registry import formatters
from fms_dgt.run import main
from fms_dgt.runtime import Runtime
from tests.catalogue.scripted_model import run_scripted

HERE = Path(__file__).parent / "fmsdgt"
DATA = HERE / "data"
TASK = HERE / "tool_calling" / "task.yaml"
SINGLE = HERE / "tool_calling" / "single_turn.yaml"


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DGT_DATA_DIR", str(DATA))


def _task(path: Path, tmp_path: Path) -> Any:
    """The task built from ``path`` (builders are imported under their own package name,
    so the class is compared by name)."""
    rt = Runtime([str(path)], [], output_dir=tmp_path / "out", overrides=Overrides())
    rt.prepare()
    task = rt.prepared[0].task  # type: ignore[attr-defined]
    assert type(task).__name__ == ToolCallingTask.__name__
    return task


def test_their_fields_land_on_ours(tmp_path: Path) -> None:
    task = _task(TASK, tmp_path)
    assert task.data_builder == "tool_calling/multi_turn/stateless"
    assert task.tool_execution == "simulated" and task.simulated
    assert (task.min_turns, task.max_turns) == (2, 2)
    assert task.max_steps == 2  # has_nested: true
    assert task.judge is True  # the verifier stage is there
    assert task.tools_per_conversation == 2  # sampler_mix[0].sampler.k
    # shop_tools.yaml first; store.audit_log (a dot) and travel's second lookup_order left out
    assert [t.name for t in task.tools] == ["lookup_order", "cancel_order", "find_train"]
    lookup = task.tools_by_name["lookup_order"]
    assert lookup.description == "The status and total of an order."
    assert lookup.returns is not None and lookup.returns["required"] == ["status", "total"]
    assert task.tools_by_name["cancel_order"].returns is None
    assert all(t.implementation is None and t.endpoint is None for t in task.tools)
    assert task.samplers is not None and len(task.samplers.personas["persona"]) == 3
    tools, focus = task.tools_for(4)
    assert len(tools) == 2 and focus in tools and task.tools_for(4) == (tools, focus)

    single = _task(SINGLE, tmp_path / "single")
    assert (single.max_steps, single.judge, single.max_turns) == (1, False, 1)
    assert single.tools_per_conversation is None and single.samplers is None


def test_every_unused_field_is_one_located_warning(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--validate", "--no-progress", "--task-paths", str(TASK), str(SINGLE)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "ok  compat/tools/shop" in captured.out and "ok  compat/tools/single" in captured.out
    err = captured.err
    for line, name in [
        (14, "separate_context"),
        (51, "termination_stages"),
        (41, "generator"),
        (32, "enrichments"),
        (28, "lm_config"),
        (20, "namespace"),
        (43, "sampler"),
        (43, "min_score"),
        (42, "weight"),
    ]:
        assert f"task.yaml:{line}: field '{name}' is accepted but not used: " in err, (name, err)
    assert "field 'lm_config' is accepted but not used (also" not in err  # one engine, said once
    assert "task.yaml:19: 1 tools of shop_tools.yaml left out (names an OpenAI-compatible API refuses)" in err
    assert "task.yaml:23: 1 tools of travel_tools.yaml left out (defined by an earlier file)" in err
    assert "single_turn.yaml:19: the iteration stages have no execute or summarize stage" in err
    assert "Traceback" not in err


def _answer(prompt: str, structured: bool) -> str:
    if prompt.startswith("You write training data"):
        name = re.findall(r"only answer by calling (\w+)", prompt)[0]
        arguments = {
            "lookup_order": {"order_id": "#W7"},
            "cancel_order": {"order_id": "#W7", "reason": "ordered by mistake"},
            "find_train": {"origin": "Leeds", "destination": "York", "date": "2027-01-04"},
        }[name]
        return json.dumps(
            {"request": f"Please help me with {name}.", "calls": [{"name": name, "arguments": arguments}]}
        )
    if prompt.startswith("You play a software function"):
        if "It is now called as lookup_order" in prompt:
            return json.dumps({"status": "shipped", "total": 12.5})
        return json.dumps({"ok": True})
    if "If answering the request needs further calls" in prompt:
        return json.dumps({"calls": []})
    if prompt.startswith("You check training data"):
        return json.dumps({"verdict": "yes", "reason": "fine"})
    return "All done."


def test_their_file_runs_on_a_scripted_model(tmp_path: Path) -> None:
    doc = yaml.safe_load(TASK.read_text())
    run = run_scripted(doc, tmp_path, _answer, num_outputs_to_generate=3, max_concurrent_calls=1, seed=3)
    assert run.outcome.status == "complete", run.outcome.message
    final = run.store("final_data")
    assert len(final) == 3
    for record in final:
        assert [m["role"] for m in record["messages"]].count("user") == 2
        assert len(record["tools"]) == 2 and record["lineage"]["tool_execution"] == "simulated"
        assert record["lineage"]["samples"]["persona"]["role"]  # the persona drawn for it
    first_prompts = [b["messages"][-1]["content"] for b in run.bodies]
    persona_lines = [p for p in first_prompts if "\nThe user is role: " in p]
    assert persona_lines, "the persona is shown to the model writing the user's messages"


def test_their_formatter_names() -> None:
    assert formatters.get("tool_calling/formatters/multi_turn") is ToolConversationFormatter
    assert formatters.get("tool_calling/formatters/single_turn") is ToolCallsFormatter
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    record: dict[str, Any] = {
        "id": "r1",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [
            {"role": "system", "content": "tools"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "{}"},
            {"role": "assistant", "content": "done"},
        ],
    }
    whole = ToolConversationFormatter().format(record)
    assert whole == {"conversation_id": "r1", "messages": record["messages"], "tools": record["tools"]}
    calls = ToolCallsFormatter(system=False).format(record)
    assert [m["role"] for m in calls["messages"]] == ["user", "assistant"]
    assert calls["messages"][1]["tool_calls"] == [call]
