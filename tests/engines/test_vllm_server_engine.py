"""The ``vllm-server`` engine: real vLLM servers started on loopback and driven through the
OpenAI-compatible API (chat, completions, json_schema, concurrency over two replicas), a
clear error when a server cannot start, and no server outliving the run: not after close,
not after Ctrl-C on the CLI, not after the parent process is killed.

The two-replica engine is the session's (tests/conftest.py), shared with the openai engine
tests, so the servers start once per test session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jsonschema
import psutil
import pytest

from fms_dgt.engines.types import Constraint, LMRequest, SamplingParams

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def _gone(pid: int) -> bool:
    """Dead or a zombie nobody reaped yet (an orphan's reaper may be slow in containers)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if not _gone(p)]
        if not alive:
            return []
        time.sleep(0.2)
    return [p for p in pids if not _gone(p)]


def _server_children(pid: int, timeout: float) -> list[int]:
    """Pids of vLLM servers started (directly or not) by process ``pid``, waiting for one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for child in psutil.Process(pid).children(recursive=True):
            try:
                if SERVER_MODULE in " ".join(child.cmdline()):
                    found.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no vLLM server was started within {timeout:g}s")


def _subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_chat_completions_and_json_schema(vllm_server_engine) -> None:
    engine = vllm_server_engine
    chat = engine.chat([{"role": "user", "content": "Say hi."}], max_tokens=8, temperature=0.0)
    assert chat.ok, chat.error
    assert chat.text.strip() and chat.prompt_tokens > 0
    assert chat.model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    completion = engine.generate(
        LMRequest(prompt="The capital of France is", params=SamplingParams(max_tokens=6, temperature=0.0))
    )
    assert completion.ok, completion.error
    assert "Paris" in completion.text
    structured = engine.generate(
        LMRequest(
            messages=[{"role": "user", "content": "A person as JSON with name and age."}],
            params=SamplingParams(max_tokens=64, temperature=0.0),
            constraint=Constraint(json_schema=SCHEMA),
        )
    )
    assert structured.ok, structured.error
    person = json.loads(structured.text)
    jsonschema.validate(person, SCHEMA)
    assert structured.parsed == [person]
    assert "\n" not in structured.text  # compact_json reaches the server


def test_32_concurrent_requests_spread_over_replicas(vllm_server_engine) -> None:
    engine = vllm_server_engine
    before = list(engine._replicas.served)
    requests = [LMRequest(prompt=f"Number {i} is", params=SamplingParams(max_tokens=4)) for i in range(32)]
    results = engine.generate_batch(requests)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    served = [after - b for after, b in zip(engine._replicas.served, before)]
    assert len(served) == 2 and sum(served) == 32 and min(served) >= 8, served


def test_cli_run_with_a_server_that_cannot_start_fails_fast(tmp_path) -> None:
    """Every builder call in flight waits on the one start; it fails once and the task stops
    with the server's log tail, rather than each call relaunching the server. (A model path
    that does not exist at all is a config error before any server starts: see
    test_engine_start.py.)"""
    cmd = [sys.executable, "-m", "fms_dgt.run", "--no-progress"]
    cmd += ["--task-paths", "tasks/core/simple/logical_reasoning/causal", "--output-dir", str(tmp_path)]
    not_a_model = tmp_path / "not-a-model"  # exists (so it passes the config check), no weights
    not_a_model.mkdir()
    cmd += ["--engine", "vllm-server", "--model", str(not_a_model)]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=_subprocess_env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert time.monotonic() - started < 120  # noticed when the server exits, not at the timeout
    assert "could not start: vLLM server exited" in proc.stderr and "last lines of" in proc.stderr
    assert "not-a-model" in proc.stderr  # vLLM's own words about the folder, from its log
    assert proc.stderr.count("could not start") == 1, proc.stderr[-3000:]
    results = json.loads(
        (tmp_path / "core/simple/logical_reasoning/causal" / "task_results.json").read_text()
    )
    assert results["status"] == "failed"


def test_killed_parent_takes_its_servers_along(tmp_path) -> None:
    """SIGKILL leaves no chance for cleanup code: the kernel's parent-death signal must stop
    the server (here while it is still starting, the longest window of a run)."""
    script = textwrap.dedent(
        f"""
        from fms_dgt.engines.vllm_server import VLLMServerEngine

        if __name__ == "__main__":
            engine = VLLMServerEngine(log_dir={str(tmp_path)!r}, startup_timeout=600)
            engine.chat([{{"role": "user", "content": "Hi"}}], max_tokens=2)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], env=_subprocess_env(), cwd=tmp_path)
    try:
        servers = _server_children(parent.pid, timeout=120)
    finally:
        parent.kill()
        parent.wait()
    assert _wait_gone(servers, timeout=30) == [], "vLLM server outlived its killed parent"


def test_ctrl_c_on_the_cli_stops_the_servers(tmp_path) -> None:
    cmd = [sys.executable, "-m", "fms_dgt.run", "--no-progress"]
    cmd += ["--task-paths", "tasks/core/simple/logical_reasoning/causal", "--output-dir", str(tmp_path)]
    cmd += ["--engine", "vllm-server"]
    cli = subprocess.Popen(
        cmd, env=_subprocess_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        servers = _server_children(cli.pid, timeout=120)
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=90)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, err[-2000:]
    assert _wait_gone(servers, timeout=30) == [], "vLLM server outlived the interrupted run"


def test_close_stops_servers_and_their_engine_processes(vllm_server_engine) -> None:
    """Last in this file on purpose: it closes the session's engine (a later test asking for
    it gets fresh servers)."""
    engine = vllm_server_engine
    pids = []
    for server in engine._servers:
        pids.append(server.proc.pid)
        pids += [p.pid for p in psutil.Process(server.proc.pid).children(recursive=True)]
    assert len(pids) >= 4, "each replica should run an API server and an engine-core process"
    engine.close()
    assert not engine._servers
    assert _wait_gone(pids, timeout=10) == []
