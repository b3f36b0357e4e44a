"""Transformation builders against a fake model: a loopback OpenAI-compatible server
(``FaultServer``) whose answers a test writes as a function of the whole request body, so
what a small real model does only by chance (an empty answer, n distinct samples, a rewrite
that drops content) happens on demand, and the test can read what was sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fms_dgt.config.overrides import Overrides, load_override_file
from fms_dgt.runtime import Outcome, Runtime
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer

# request body -> the texts of its choices (one per sample), or a full response mapping
Reply = Callable[[dict[str, Any]], list[str] | dict[str, Any]]


@dataclass
class FakeRun:
    outcome: Outcome
    task_dir: Path
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def store(self, name: str) -> list[dict[str, Any]]:
        path = self.task_dir / f"{name}.jsonl"
        return read_jsonl(path) if path.exists() else []


def response(path: str, body: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    chat = path.endswith("chat/completions")
    choices = [
        {
            "index": i,
            "finish_reason": "stop",
            **({"message": {"role": "assistant", "content": t}} if chat else {"text": t}),
        }
        for i, t in enumerate(texts)
    ]
    return {
        "id": "fake",
        "object": "chat.completion" if chat else "text_completion",
        "model": body.get("model", "fake"),
        "choices": choices,
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 7 * len(texts),
            "total_tokens": 5 + 7 * len(texts),
        },
    }


def run_fake(
    task: dict[str, Any],
    tmp_path: Path,
    reply: Reply,
    script: tuple[str, ...] = (),
    override: dict[str, Any] | None = None,
    **runner: Any,
) -> FakeRun:
    """Run ``task`` (a task.yaml as a mapping) with every request answered by ``reply``;
    ``override``: an override file's content (its ``engines`` section is the fake's)."""
    bodies: list[dict[str, Any]] = []
    paths: list[str] = []

    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        bodies.append(body)
        paths.append(path)
        texts = reply(body)
        return texts if isinstance(texts, dict) else response(path, body, texts)

    folder = tmp_path / "task"
    folder.mkdir(exist_ok=True)
    (folder / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    with FaultServer(responder=respond, script=script) as srv:
        engine = {
            "type": "openai",
            "model": "fake",
            "base_url": srv.url,
            "max_retries": 1,
            "backoff_base": 0.01,
        }
        overrides = Overrides()
        if override is not None:
            (folder / "override.yaml").write_text(yaml.safe_dump(override, sort_keys=False))
            overrides = load_override_file(str(folder / "override.yaml"))
        overrides.engine, overrides.runner = engine, runner
        rt = Runtime([str(folder / "task.yaml")], [], output_dir=tmp_path / "out", overrides=overrides)
        rt.prepare()
        outcome = asyncio.run(rt.run())[0]
    return FakeRun(outcome, tmp_path / "out" / task["task_name"], bodies, paths)


def prompt_of(body: dict[str, Any]) -> str:
    """The text of the request: its last message, or its raw prompt."""
    if "messages" in body:
        return str(body["messages"][-1]["content"])
    return str(body["prompt"])


def as_json(key: str, value: Any) -> str:
    return json.dumps({key: value})


def task(name: str, builder: str, data: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "task_name": name,
        "task_description": "A transformation under test.",
        "created_by": "tests",
        "data_builder": builder,
        **extra,
        "data": data,
    }
