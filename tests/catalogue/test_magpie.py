"""``magpie`` on the real default model: instructions sampled from SmolLM2's own pre-query
prefix on in-process vLLM (one turn and follow-up turns) and through a real vLLM server's
``/v1/completions``; no template token in any record. Mechanics the model cannot be made to
show on demand (stripping, rejections, pre_query_template) are in test_magpie_mechanics.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.config.overrides import Overrides
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

EXAMPLE = REPO / "tasks/examples/magpie/task.yaml"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
SPECIAL = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
REASONS = ("instruction cut at", "response cut at", "empty ", "template token in the ")


def _check(out: Path, task_name: str, target: int, turns: int, source: str) -> list[dict[str, Any]]:
    final = read_jsonl(out / task_name / "final_data.jsonl")
    assert len(final) == target
    assert len({r["instruction"] for r in final}) == target  # deduplicated
    for record in final:
        chat = [m for m in record["messages"] if m["role"] != "system"]
        assert [m["role"] for m in chat] == ["user", "assistant"] * turns
        assert record["instruction"] == chat[0]["content"] and record["response"] == chat[1]["content"]
        for message in record["messages"]:
            assert message["content"].strip() == message["content"] and message["content"]
            assert not any(token in message["content"] for token in SPECIAL), message
        lineage = record["lineage"]
        assert lineage["model"] == MODEL and lineage["chat_template_source"] == source
        assert lineage["tokens"]["completion"] > 0 and lineage["icl_ids"] == []
    rejected = out / task_name / "rejected.jsonl"
    for rejection in read_jsonl(rejected) if rejected.exists() else []:
        if rejection["block"] == "magpie":
            assert rejection["reason"].startswith(REASONS), rejection
            assert "text" in rejection["record"]["raw"]
        else:
            assert rejection["block"] in ("unique_instruction", "dedup"), rejection
    return final


def test_the_example_samples_instructions_from_the_template_prefix(run_example: RunExample) -> None:
    rt, outcome = run_example(EXAMPLE, target=3)
    assert outcome.status == "complete", outcome.message
    _check(rt.output_dir, "examples/magpie", 3, 1, "engine")


def test_follow_up_turns_with_a_system_prompt(run_example: RunExample, tmp_path: Path) -> None:
    task = yaml.safe_load(EXAMPLE.read_text())
    task.update(
        task_name="examples/magpie_turns",
        turns=2,
        system_prompt="You are an assistant for people who love {{ hobby }}.",
        samplers={"hobby": {"type": "category", "values": ["gardening", "cooking"]}},
    )
    path = tmp_path / "magpie_turns" / "task.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(task))
    rt, outcome = run_example(path, target=2)
    assert outcome.status == "complete", outcome.message
    for record in _check(rt.output_dir, "examples/magpie_turns", 2, 2, "engine"):
        hobby = record["lineage"]["samples"]["hobby"]
        assert record["messages"][0] == {
            "role": "system",
            "content": f"You are an assistant for people who love {hobby}.",
        }


@pytest.mark.slow
def test_on_a_vllm_server_through_completions(vllm_server: str, tmp_path: Path) -> None:
    """The session's real vLLM server serves the default model under its hub name, so the
    task names the local folder holding its tokenizer."""
    import asyncio

    from fms_dgt.engines.default_model import model_dir
    from fms_dgt.runtime import Runtime

    task = yaml.safe_load(EXAMPLE.read_text())
    task.update(task_name="examples/magpie_server", tokenizer=str(model_dir()))
    path = tmp_path / "magpie_server" / "task.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(task))
    engine = {"type": "openai", "base_url": vllm_server + "/v1", "model": MODEL, "timeout": 300}
    overrides = Overrides(engine=engine, runner={"num_outputs_to_generate": 2})
    rt = Runtime([str(path)], [], output_dir=tmp_path / "out", overrides=overrides)
    rt.prepare()
    (outcome,) = asyncio.run(rt.run())
    assert outcome.status == "complete", outcome.message
    _check(rt.output_dir, "examples/magpie_server", 2, 1, "tokenizer")
