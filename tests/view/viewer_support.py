"""What the viewer's tests share: the viewer served over real HTTP on 127.0.0.1 (uvicorn in a
thread, stopped through its handle), and a real run's output made once per session by the
framework's CLI against a fake OpenAI-compatible server (``FaultServer``): accepted records
(one holding markup), rejections by two filters, failed requests (a scripted 401) and a task
card whose engine ``api_key`` came from a planted secret.
"""

from __future__ import annotations

import http.client
import itertools
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from tests.core.helpers import write_task
from tests.reliability.crash import cli_command, cli_env
from tests.reliability.test_server_faults import ENGINE
from tests.support.fault_server import FaultServer

SECRET = "sk-viewer-Planted-9d1e77"
XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
STUB_TASK = "viewer/stub"
_made: dict[str, Path] = {}


class ViewerServer:
    """``create_app(root, token)`` under uvicorn on 127.0.0.1 (a free port) in a thread."""

    def __init__(self, root: Path, token: str = "test-token-123") -> None:
        import uvicorn

        from fms_dgt.view.__main__ import free_port
        from fms_dgt.view.app import create_app

        self.token = token
        self.port = free_port("127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(root, token), host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ViewerServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the viewer did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def request(
        self, path: str, method: str = "GET", token: str | None = "", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        """Send ``path`` as is (no normalisation); ``token=""``: the server's, None: none."""
        if token is not None:
            path += ("&" if "?" in path else "?") + f"token={token or self.token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read().decode("utf-8", "replace")
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def get(self, path: str) -> str:
        status, _, body = self.request(path)
        assert status == 200, (path, status, body[:500])
        return body


def _responder() -> Any:
    """A question/answer pair per request; every fifth question carries markup."""
    counter = itertools.count()

    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        n = next(counter)
        question = f"Why does fake event {n} happen?" + (f" {XSS}" if n % 5 == 2 else "")
        text = json.dumps({"question": question, "answer": f"Because of cause {n}."})
        return {
            "id": f"fake-{n}",
            "object": "chat.completion",
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }

    return respond


def stub_run(base: Path) -> Path:
    """The output folder of one real CLI run (made once per session under ``base``)."""
    if "stub" in _made:
        return _made["stub"]
    folder = base / "stub_task"
    write_task(
        folder,
        name=STUB_TASK,
        task_description="viewer test task (key ${DGT_VIEW_SECRET})",
        runner_config={"num_outputs_to_generate": 24, "max_concurrent_calls": 4},
        filters=[
            {"name": "no_teens", "type": "regex", "fields": ["question"], "must_not_match": "event 1[0-9] "},
            {
                "name": "no_sevens",
                "type": "regex",
                "fields": ["question"],
                "must_not_match": "event [0-9]*7 ",
            },
        ],
    )
    override = base / "override.yaml"
    override.write_text(yaml.safe_dump({"engines": {**ENGINE, "api_key": "${DGT_VIEW_SECRET}"}}))
    out = base / "out"
    with FaultServer(responder=_responder(), script=["401"]) as server:
        r = subprocess.run(
            cli_command(
                *("--task-paths", str(folder), "--config-path", str(override), "--output-dir", str(out)),
                *("--engine", "openai", "--base-url", server.url, "--model", "fake"),
            ),
            env=cli_env(DGT_VIEW_SECRET=SECRET),
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert r.returncode == 0, r.stderr[-3000:]
    _made["stub"] = out
    return out


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
