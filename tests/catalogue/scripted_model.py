"""Catalogue builders against a scripted model: a loopback OpenAI-compatible server
(``FaultServer`` in fake mode) whose answers a test writes as a function of the request, so
the mechanics a small real model shows only by chance (a copied seed, an echoed prompt, a
failed request mid-chain) happen on demand. Runs in-process; no model is loaded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fms_dgt.config.overrides import Overrides
from fms_dgt.runtime import Outcome, Runtime
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer, canned_response

# (prompt text of the last message, whether JSON was asked for) -> the answer's text
Answer = Callable[[str, bool], str]


@dataclass
class ScriptedRun:
    outcome: Outcome
    task_dir: Path
    runtime: Runtime
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def store(self, name: str) -> list[dict[str, Any]]:
        path = self.task_dir / f"{name}.jsonl"
        return read_jsonl(path) if path.exists() else []


def run_scripted(task: dict[str, Any], tmp_path: Path, answer: Answer, **runner: Any) -> ScriptedRun:
    """Run ``task`` (a task.yaml as a mapping) with every request answered by ``answer``."""
    bodies: list[dict[str, Any]] = []

    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        bodies.append(body)
        text = answer(body["messages"][-1]["content"], bool(body.get("response_format")))
        return canned_response(path, {**body, "response_format": None}, text)

    folder = tmp_path / "task"
    folder.mkdir(exist_ok=True)
    (folder / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    with FaultServer(responder=respond) as srv:
        engine = {"type": "openai", "model": "fake", "base_url": srv.url, "max_retries": 1}
        rt = Runtime(
            [str(folder / "task.yaml")],
            [],
            output_dir=tmp_path / "out",
            overrides=Overrides(engine=engine, runner=runner),
        )
        rt.prepare()
        outcome = asyncio.run(rt.run())[0]
    return ScriptedRun(outcome, tmp_path / "out" / task["task_name"], rt, bodies)


def as_json(key: str, value: Any) -> str:
    return json.dumps({key: value})
