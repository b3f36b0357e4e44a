"""A wrong endpoint is found at once: an unreachable server stops the run before any
request, and a run whose requests all fail with a status that retrying cannot fix (a base
URL without /v1, say) stops after the first few with the server's status and message."""

from __future__ import annotations

import time
from pathlib import Path

from tests.core.helpers import REPO, read_jsonl, run_cli
from tests.support.fault_server import FaultServer

CAUSAL = REPO / "tasks/core/simple/logical_reasoning/causal"


def _args(out: Path, url: str) -> tuple[str, ...]:
    return (
        "--task-paths",
        str(CAUSAL),
        "--output-dir",
        str(out),
        "--engine",
        "openai",
        "--model",
        "fake",
        "--base-url",
        url,
    )


def test_an_unreachable_server_stops_the_run_before_any_request(tmp_path: Path) -> None:
    started = time.monotonic()
    r = run_cli(*_args(tmp_path / "out", "http://127.0.0.1:9/v1"))
    assert r.returncode == 1 and time.monotonic() - started < 30
    assert "cannot reach http://127.0.0.1:9/v1" in r.stdout + r.stderr
    assert "Is the server running, and are the host and port right?" in r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def test_requests_that_all_fail_for_good_stop_the_run_with_the_server_message(tmp_path: Path) -> None:
    with FaultServer(script=["404"] * 500) as srv:
        started = time.monotonic()
        r = run_cli(*_args(tmp_path / "out", srv.url))
        seen = srv.counts["requests"]
    assert r.returncode == 1, r.stderr
    text = r.stdout + r.stderr
    assert "retrying cannot help" in text and "HTTP 404: scripted status 404" in text
    assert "/v1" in text  # the hint about the base URL
    assert seen <= 32 and time.monotonic() - started < 60  # stopped after the first wave, not 10 minutes
    failed = read_jsonl(tmp_path / "out/core/simple/logical_reasoning/causal/failed.jsonl")
    assert 8 <= len(failed) <= seen
