"""``python -m fms_dgt.view`` / ``dgt view`` as a user starts it: fast ``--help`` without the
server libraries, located errors, and a real server process that prints its URL with the
token and is stopped through its own PID."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.core.helpers import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _py(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def test_help_imports_no_server_library() -> None:
    r = _py("-X", "importtime", "-m", "fms_dgt.view", "--help")
    assert r.returncode == 0 and "--allow-remote" in r.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    assert not imported & {"starlette", "uvicorn", "jinja2", "plotly", "pyarrow"}, imported


def test_dgt_view_dispatches_to_the_viewer() -> None:
    code = "import sys; from fms_dgt.run import cli; sys.argv = ['dgt', 'view', '--help']; sys.exit(cli())"
    r = _py("-c", code)
    assert r.returncode == 0 and "python -m fms_dgt.view" in r.stdout


def test_errors_are_located_and_exit_2(tmp_path: Path) -> None:
    r = _py("-m", "fms_dgt.view", str(tmp_path / "missing"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = _py("-m", "fms_dgt.view", str(tmp_path), "--host", "0.0.0.0")
    assert r.returncode == 2 and "--allow-remote" in r.stderr and "Traceback" not in r.stderr
    r = _py("-m", "fms_dgt.view", str(tmp_path), "--port", "70000")
    assert r.returncode == 2 and "--port" in r.stderr


def test_a_served_folder_answers_only_with_the_printed_token(tmp_path: Path) -> None:
    task = tmp_path / "out" / "a" / "b"
    task.mkdir(parents=True)
    (task / "data.jsonl").write_text(json.dumps({"id": "1", "question": "hello"}) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fms_dgt.view", str(tmp_path / "out")],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            m = re.search(r"(http://127\.0\.0\.1:\d+/)\?token=([\w-]+)", line)
            if m:
                url, token = m.group(1), m.group(2)
        assert url, "no URL printed"
        for _ in range(100):  # the URL is printed just before the socket is bound
            try:
                body = urllib.request.urlopen(f"{url}api/status?token={token}", timeout=5).read()
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        status = json.loads(body)["tasks"]
        assert [(t["name"], t["counts"]) for t in status] == [("a/b", {"data": 1})]
        try:
            urllib.request.urlopen(f"{url}api/status", timeout=5)
            raise AssertionError("answered without the token")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
