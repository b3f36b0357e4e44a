"""The ``conversation`` builder under SIGKILL: the real CLI, run against a scripted loopback
OpenAI-compatible server (fast and deterministic), killed at random moments while it
generates and resumed with the same command each time. The resumed run must reach exactly
the target, with only whole conversations (never one cut by a kill) and no duplicates.

The server's answers carry the conversation they belong to: a scenario is ``Case <n>`` (a
counter in the server, so every scenario ever written is distinct) and every later message
of that conversation repeats the case number it was asked about, so a record whose messages
came from two conversations, or that lost a turn, cannot pass unnoticed."""

from __future__ import annotations

import json
import random
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import yaml

from tests.reliability.crash import KillLog, cli_command, cli_env, kill_during
from tests.support.fault_server import FaultServer, canned_response

REPO = Path(__file__).resolve().parents[2]
TARGET = 120
MIN_TURNS, MAX_TURNS = 2, 4
KILLS = 5
CASE = re.compile(r"case (\d+)", re.I)


class ScriptedChats:
    """Answers as the user model (scenario, user turns, the controller) and as the assistant."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cases = 0
        self.started: set[int] = set()  # every case whose scenario the server wrote

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages") or []
        last = str(messages[-1]["content"]) if messages else ""
        if "Describe in one or two sentences a situation" in last:
            with self.lock:
                self.cases += 1
                case = self.cases
                self.started.add(case)
            text = f"Case {case}: someone needs help with a leaking tap."
        elif "You play a person" in last:
            case = int(CASE.search(last).group(1))  # type: ignore[union-attr]
            turn = last.count("\nPerson: ") + 1
            text = f"Person: How do I fix the tap in case {case}, step {turn}?"
        elif "Answer yes or no" in last:
            case = int(CASE.search(last).group(1))  # type: ignore[union-attr]
            text = "yes" if case % 3 == 0 else "no"  # the llm controller ends every third one
        else:  # the assistant, answering the conversation so far
            case = int(CASE.search(last).group(1))  # type: ignore[union-attr]
            turn = sum(1 for m in messages if m["role"] == "user")
            text = f"For case {case}, step {turn}: close the valve first."
        return canned_response(path, body, text)


def _setup(tmp_path: Path, url: str) -> tuple[list[str], Path]:
    task = tmp_path / "task" / "task.yaml"
    task.parent.mkdir(parents=True)
    task.write_text(
        yaml.safe_dump(
            {
                "task_name": "chats",
                "task_description": "People asking for help with repairs at home.",
                "created_by": "tests",
                "data_builder": "conversation",
                "personas": ["A plumber's apprentice.", {"name": "Ana", "job": "teacher"}],
                "min_turns": MIN_TURNS,
                "max_turns": MAX_TURNS,
                "controller": "llm",
                "assistant_system": "You are a helpful assistant.",
                "runner_config": {"num_outputs_to_generate": TARGET, "max_concurrent_calls": 4, "seed": 3},
            },
            sort_keys=False,
        )
    )
    override = tmp_path / "override.yaml"
    engine = {"type": "openai", "base_url": url, "model": "fake", "max_retries": 1, "timeout": 20}
    override.write_text(yaml.safe_dump({"engines": engine}))
    out = tmp_path / "out"
    cmd = cli_command("--task-paths", str(task), "--config-path", str(override), "--output-dir", str(out))
    return cmd, out / "chats"


def _lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), f"{path} ends in a torn line"
    return [json.loads(line) for line in raw.decode().split("\n")[:-1]]


def _check_whole(record: dict[str, Any]) -> int:
    """``record`` is one whole conversation; returns its case number."""
    case = int(CASE.search(record["scenario"]).group(1))  # type: ignore[union-attr]
    messages = record["messages"]
    assert messages[0] == {"role": "system", "content": "You are a helpful assistant."}
    chat = messages[1:]
    assert [m["role"] for m in chat] == ["user", "assistant"] * (len(chat) // 2), messages
    turns = len(chat) // 2
    assert record["num_turns"] == turns and MIN_TURNS <= turns <= MAX_TURNS, record
    for k, (user, answer) in enumerate(zip(chat[::2], chat[1::2]), start=1):
        assert user["content"] == f"How do I fix the tap in case {case}, step {k}?", (
            messages
        )  # label stripped
        assert answer["content"] == f"For case {case}, step {k}: close the valve first.", messages
    planned = record["lineage"]["planned_turns"]
    if record["ended_by"] == "length":
        assert turns == planned, record
    else:
        assert record["ended_by"] == "controller" and case % 3 == 0 and MIN_TURNS <= turns < planned, record
    assert record["persona"] in ("A plumber's apprentice.", "name: Ana; job: teacher")
    return case


def test_conversations_survive_sigkill_whole_and_once(tmp_path: Path) -> None:
    chats = ScriptedChats()
    with FaultServer(responder=chats, latency=0.01) as server:
        cmd, task_dir = _setup(tmp_path, server.url)
        rng = random.Random(99)
        kills = KillLog()
        for _ in range(KILLS):
            outcome = kill_during(
                cmd,
                "generation",
                data_file=task_dir / "data.jsonl",
                marker=tmp_path / "no-marker.jsonl",
                rng=rng,
                max_delay=0.6,
                log_file=tmp_path / "runs.log",
            )
            kills.attempts.append(("generation", outcome))
            if outcome == "killed":  # nothing a kill left behind is a partial conversation
                for record in _lines(task_dir / "data.jsonl"):
                    _check_whole(record)
        assert kills.landed("generation") >= KILLS - 1, kills.attempts
        done = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]

        final = _lines(task_dir / "final_data.jsonl")
        assert len(final) == TARGET
        assert len({r["id"] for r in final}) == TARGET
        cases = [_check_whole(r) for r in final]
        assert len(set(cases)) == TARGET, "a conversation was kept twice"
        assert any(r["ended_by"] == "controller" for r in final)

        data = _lines(task_dir / "data.jsonl")
        assert len({r["id"] for r in data}) == len(data), "a conversation was appended twice"
        request_idx = [r["lineage"]["request_idx"] for r in data]
        assert len(set(request_idx)) == len(request_idx), "a builder call was replayed into data"
        kept = {_check_whole(r) for r in data}
        # the kills cut conversations in the middle (scenarios the server wrote whose
        # conversation is in no record): those were dropped, not written in part
        assert chats.started - kept, "no kill landed inside a conversation"

        again = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already complete" in again.stderr, again.stderr[-2000:]
