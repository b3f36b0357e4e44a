"""``magpie`` mechanics a 135M model cannot be made to show on demand, against a scripted
loopback OpenAI-compatible server: the raw prefix goes to ``/v1/completions`` exactly as
the model's chat template writes it (follow-up turns included), template tokens around a
message are stripped, a message that still holds one is rejected with the reason, and an
``openai`` endpoint without a tokenizer uses ``pre_query_template`` (one turn) or is
refused at --validate. The real model runs the same builder in test_magpie.py."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.config.overrides import Overrides
from fms_dgt.errors import ConfigError
from fms_dgt.runtime import Outcome, Runtime
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer, canned_response

SMOL_PREFIX = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\n"
)
# what the scripted "model" writes as user turns, in order, and what each must become
INSTRUCTIONS = [  # one builder call each, in this order (one call in flight at a time)
    ("How do I boil an egg?", "How do I boil an egg?"),
    ("Why is it cold?\nassistant\nBecause", None),  # the next turn began: rejected
    ("Tell me <|im_start|> more", None),  # a special token inside: rejected
    ("user\nWhat is a prime number?", "What is a prime number?"),  # a repeated header: stripped
    ("Write a long story", None),  # cut at instruction_max_tokens: rejected
    ("Name three rivers.<|im_end|>", "Name three rivers."),  # a trailing special token: stripped
]


def _tokenizer_folder() -> str:
    from fms_dgt.engines.default_model import is_converted, model_dir

    if not is_converted():
        pytest.skip("the default model folder is not converted (python -m fms_dgt.engines.default_model)")
    return str(model_dir())


class ScriptedModel:
    """Completions: the next scripted instruction; chat: an answer naming the question."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.prompts: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/completions") and "prompt" in body:
            with self.lock:
                self.prompts.append(body["prompt"])
                text = self.script.pop(0) if self.script else f"Question number {len(self.prompts)}?"
            reply = canned_response(path, body, text)
            if text.startswith("Write a long"):
                reply["choices"][0]["finish_reason"] = "length"
            return reply
        last = body["messages"][-1]["content"]
        return canned_response(path, body, f"An answer to: {last}")


def _run(tmp_path: Path, url: str, **task: Any) -> tuple[Runtime, Outcome]:
    folder = tmp_path / "task"
    folder.mkdir(exist_ok=True)
    data = {
        "task_name": "mp",
        "task_description": "magpie mechanics",
        "created_by": "tests",
        "data_builder": "magpie",
        "runner_config": {
            "num_outputs_to_generate": 3,
            "max_concurrent_calls": 1,
            "max_stalled_attempts": 20,
        },
        **task,
    }
    (folder / "task.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    engine = {"type": "openai", "base_url": url, "model": "fake", "max_retries": 0}
    rt = Runtime([str(folder)], [], output_dir=tmp_path / "out", overrides=Overrides(engine=engine))
    rt.prepare()
    return rt, asyncio.run(rt.run())[0]


def test_prefix_goes_to_completions_and_template_tokens_never_reach_a_record(tmp_path: Path) -> None:
    model = ScriptedModel([text for text, _ in INSTRUCTIONS])
    with FaultServer(responder=model) as server:
        rt, outcome = _run(tmp_path, server.url, tokenizer=_tokenizer_folder(), instruction_max_tokens=32)
    assert outcome.status == "complete", outcome.message
    assert model.prompts[0] == SMOL_PREFIX  # the template's own prefix, nothing added
    final = read_jsonl(rt.output_dir / "mp/final_data.jsonl")
    kept = [want for _, want in INSTRUCTIONS if want]
    assert sorted(r["instruction"] for r in final) == sorted(kept)
    for record in final:
        assert record["messages"] == [
            {"role": "user", "content": record["instruction"]},
            {"role": "assistant", "content": f"An answer to: {record['instruction']}"},
        ]
        assert record["response"] == record["messages"][1]["content"]
        assert record["lineage"]["chat_template_source"] == "tokenizer"
        assert "<|" not in str(record["messages"])
    reasons = sorted(r["reason"] for r in read_jsonl(rt.output_dir / "mp/rejected.jsonl"))
    assert reasons == [
        "instruction cut at instruction_max_tokens",
        "template token in the instruction: '<|im_start|>'",
        "template token in the instruction: 'assistant'",
    ]


def test_follow_up_turns_continue_the_conversation_in_the_template(tmp_path: Path) -> None:
    model = ScriptedModel(["How do I boil an egg?", "And how long for a soft one?"])
    with FaultServer(responder=model) as server:
        rt, outcome = _run(
            tmp_path,
            server.url,
            tokenizer=_tokenizer_folder(),
            turns=2,
            system_prompt="You help people cook.",
            runner_config={"num_outputs_to_generate": 1, "max_concurrent_calls": 1},
        )
    assert outcome.status == "complete", outcome.message
    first = "<|im_start|>system\nYou help people cook.<|im_end|>\n<|im_start|>user\n"
    assert model.prompts[0] == first
    assert model.prompts[1] == (
        first + "How do I boil an egg?<|im_end|>\n<|im_start|>assistant\n"
        "An answer to: How do I boil an egg?<|im_end|>\n<|im_start|>user\n"
    )
    (record,) = read_jsonl(rt.output_dir / "mp/final_data.jsonl")
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert record["messages"][3]["content"] == "And how long for a soft one?"


def test_pre_query_template_when_the_endpoint_gives_no_tokenizer(tmp_path: Path) -> None:
    prefix = "<|start_header_id|>user<|end_header_id|>\n\n"
    model = ScriptedModel(["What is rain?<|eot_id|>", "Hi <|end_header_id|> there", "Why is the sky blue?"])
    with FaultServer(responder=model) as server:
        rt, outcome = _run(tmp_path, server.url, pre_query_template=prefix)
    assert outcome.status == "complete", outcome.message
    assert set(model.prompts) == {prefix}
    final = read_jsonl(rt.output_dir / "mp/final_data.jsonl")
    assert {r["lineage"]["chat_template_source"] for r in final} == {"pre_query_template"}
    assert "Why is the sky blue?" in {r["instruction"] for r in final}
    reasons = [r["reason"] for r in read_jsonl(rt.output_dir / "mp/rejected.jsonl")]
    assert "template token in the instruction: '<|end_header_id|>'" in reasons


@pytest.mark.parametrize(
    ("task", "fragment", "key"),
    [
        ({}, "cannot read the chat template of model 'fake'", "data_builder"),
        (
            {"pre_query_template": "User: ", "turns": 2},
            "follow-up turns need the model's chat template",
            "turns",
        ),
    ],
)
def test_an_endpoint_without_template_is_refused_at_validate(
    tmp_path: Path, task: dict[str, Any], fragment: str, key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _run(tmp_path, "http://127.0.0.1:9/v1", **task)
    assert fragment in str(err.value) and key in str(err.value)


def test_an_engine_without_tokenizer_or_template_stops_the_task_with_the_reason(tmp_path: Path) -> None:
    """An engine that cannot be checked at --validate (here a plugin engine) and gives no
    tokenizer: the first call stops the task with a located message, no records made."""
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "task.yaml").write_text(
        yaml.safe_dump(
            {"task_name": "mp", "task_description": "d", "created_by": "tests", "data_builder": "magpie"}
        )
    )
    engine = {"class_path": "tests.support.scripted_engine:ScriptedEngine"}
    rt = Runtime([str(folder)], [], output_dir=tmp_path / "out", overrides=Overrides(engine=engine))
    rt.prepare()
    (outcome,) = asyncio.run(rt.run())
    assert outcome.status == "failed"
    assert "no chat template found for model 'scripted'" in outcome.message
    assert "task.yaml:2: field 'data_builder'" in outcome.message  # keys sorted: its line
    assert not (rt.output_dir / "mp/data.jsonl").exists() or not read_jsonl(rt.output_dir / "mp/data.jsonl")
