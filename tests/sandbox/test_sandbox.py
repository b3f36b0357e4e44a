"""The sandbox stops what generated code must not do, quickly, with the right status, and
the calling process goes on. Limits are small so the whole file runs in seconds.

Tests of a kernel layer (network namespace, read-only mounts) bypass the audit hook on
purpose, through a child process the hook lets start, and are skipped where the kernel
does not grant that namespace (the result's ``layers`` say what was in force)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fms_dgt.sandbox import Limits, Sandbox, SandboxResult, run_callable, run_code

FAST = Limits(cpu_seconds=1, wall_seconds=4, memory_mb=256)
TOOLS = str(Path(__file__).parent)


def run(code: str, limits: Limits = FAST, **kw: object) -> SandboxResult:
    return asyncio.run(run_code(code, limits, **kw))  # type: ignore[arg-type]


def test_ok_output_and_durations() -> None:
    result = run("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert result.status == "ok" and result.exit_code == 0
    assert result.stdout == "out\n" and result.stderr == "err\n"
    assert 0 < result.wall_seconds < 3 and result.cpu_seconds is not None
    assert {"rlimits", "audit-hook"} <= set(result.layers)


def test_error_keeps_the_users_traceback() -> None:
    result = run("def f():\n    assert 1 == 2, 'nope'\nf()")
    assert result.status == "error" and result.exit_code == 1 and result.exception == "AssertionError"
    assert 'File "main.py", line 2, in f' in result.stderr and "AssertionError: nope" in result.stderr
    assert "child.py" not in result.stderr  # the sandbox's own frames are left out
    assert result.reason().startswith("error: exit code 1 (AssertionError)\n")


def test_socket_is_refused(tmp_path: Path) -> None:
    # a real listener on the parent's loopback: the child must not reach it
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        code = (
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')"
        )
        result = run(code)
    finally:
        server.close()
    assert result.status == "error" and "connected" not in result.stdout
    assert "network access is not allowed" in result.stderr


def test_network_namespace_holds_without_the_hook() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    probe = f"import socket;s=socket.socket();s.settimeout(1);print('connect', s.connect_ex(('127.0.0.1', {port})))"
    code = f"import subprocess, sys\nprint(subprocess.run([sys.executable, '-c', {probe!r}], capture_output=True, text=True).stdout)"
    try:
        result = run(code, Limits(cpu_seconds=2, wall_seconds=6, allow_subprocess=True))
    finally:
        server.close()
    if "network-namespace" not in result.layers:
        pytest.skip(f"no network namespace here: {result.problems}")
    assert result.status == "ok", result.stderr
    assert "connect 0" not in result.stdout and "connect " in result.stdout


def test_writing_outside_the_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    result = run(f"open({str(target)!r}, 'w').write('x')")
    assert result.status == "error" and not target.exists()
    assert "outside the sandbox folder" in result.stderr
    result = run(f"import os\nos.remove({str(tmp_path)!r})")
    assert result.status == "error" and tmp_path.exists()


def test_read_only_mounts_hold_without_the_hook(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    code = f"import subprocess\nsubprocess.run(['sh', '-c', 'echo x > {target}'])"
    result = run(code, Limits(cpu_seconds=2, wall_seconds=6, allow_subprocess=True))
    if "read-only-mounts" not in result.layers:
        pytest.skip(f"no read-only mount namespace here: {result.problems}")
    assert not target.exists()
    assert "Read-only file system" in result.stderr


def test_the_folder_is_writable_private_and_removed() -> None:
    code = (
        "import os, tempfile\nopen('a.txt', 'w').write('hello')\ntempfile.mkstemp()\n"
        "print(open('a.txt').read(), os.getcwd())"
    )
    result = run(code)
    assert result.status == "ok", result.stderr
    text, folder = result.stdout.split()
    assert text == "hello" and Path(folder).name.startswith("dgt-sandbox-")
    assert not Path(folder).exists()


def test_environment_secrets_are_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET", "hunter2")
    result = run("import os\nprint(os.environ.get('SECRET'))\nprint(sorted(os.environ))")
    assert result.status == "ok"
    assert "hunter2" not in result.stdout and result.stdout.startswith("None\n")
    names = set(result.stdout.splitlines()[1].strip("[]").replace("'", "").split(", "))
    assert names <= {"HOME", "TMPDIR", "LC_CTYPE"}  # LC_CTYPE: Python's own C-locale coercion


def test_fork_bomb_is_stopped() -> None:
    start = time.monotonic()
    result = run("import os\nwhile True:\n    os.fork()")
    assert result.status == "error" and result.exception == "PermissionError"
    assert "os.fork: starting processes is not allowed" in result.stderr
    assert time.monotonic() - start < 3
    for code in ("import subprocess\nsubprocess.run(['true'])", "import os\nos.system('true')"):
        assert "starting processes is not allowed" in run(code).stderr


def test_ctypes_cannot_load_native_code() -> None:
    result = run("import ctypes\nctypes.CDLL(None).fork()")
    assert result.status == "error" and "ctypes" in result.stderr


@pytest.mark.skipif(os.getuid() == 0, reason="the kernel does not enforce RLIMIT_NPROC for root")
def test_process_limit_for_non_root() -> None:
    code = "import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time; time.sleep(5); os._exit(0)\n        n += 1\nexcept OSError:\n    print('limited', n)"
    result = run(code, Limits(cpu_seconds=2, wall_seconds=4, allow_subprocess=True, max_processes=8))
    assert "limited" in result.stdout


def test_allocating_4_gb_is_a_memory_status() -> None:
    start = time.monotonic()
    result = run("x = bytearray(4 * 1024 ** 3)\nprint('allocated')")
    assert result.status == "memory" and "allocated" not in result.stdout
    assert result.reason().startswith("memory: exceeded the memory limit")
    assert time.monotonic() - start < 3


def test_endless_loop_hits_the_cpu_limit() -> None:
    start = time.monotonic()
    result = run("while True:\n    pass")
    assert result.status == "timeout" and result.limit == "cpu"
    assert time.monotonic() - start < FAST.wall_seconds


def test_sleeping_forever_hits_the_wall_limit_and_children_die() -> None:
    marker = f"dgt-sandbox-test-{os.getpid()}-{time.monotonic_ns()}"
    code = (
        "import subprocess, time\n"
        f"subprocess.Popen(['sh', '-c', 'exec -a {marker} sleep 60'], start_new_session=True)\n"
        "time.sleep(60)"
    )
    start = time.monotonic()
    result = run(code, Limits(cpu_seconds=2, wall_seconds=1.5, allow_subprocess=True))
    assert result.status == "timeout" and result.limit == "wall"
    assert time.monotonic() - start < 4
    time.sleep(0.3)
    alive = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.strip()
    if alive and "pid-namespace" not in result.layers:
        pytest.skip("without a pid namespace a child that left the process group survives")
    assert not alive, f"a grandchild survived: {alive}"


def test_output_is_bounded_to_its_tail() -> None:
    result = run(
        "for i in range(200000):\n    print(i)", Limits(cpu_seconds=2, wall_seconds=6, output_chars=100)
    )
    assert result.status == "ok"
    assert result.stdout.startswith("[...]\n") and result.stdout.endswith("199999\n")
    assert len(result.stdout) <= 110


def test_the_caller_goes_on_and_runs_are_concurrent() -> None:
    ticks: list[float] = []

    async def main() -> list[SandboxResult]:
        async def heartbeat() -> None:
            for _ in range(10):
                ticks.append(time.monotonic())
                await asyncio.sleep(0.1)

        sandbox = Sandbox(max_concurrency=2)
        sleeper = Limits(cpu_seconds=1, wall_seconds=1)
        return list(
            await asyncio.gather(
                sandbox.run_code("import time\ntime.sleep(5)", sleeper),
                sandbox.run_code("import time\ntime.sleep(5)", sleeper),
                heartbeat(),
            )
        )[:2]

    start = time.monotonic()
    results = asyncio.run(main())
    assert [r.status for r in results] == ["timeout", "timeout"]
    assert time.monotonic() - start < 2.5  # both at once, not one after the other
    assert len(ticks) == 10 and max(b - a for a, b in zip(ticks, ticks[1:])) < 0.5


def test_run_callable_returns_json_values() -> None:
    result = asyncio.run(run_callable("tools:add", {"a": 2, "b": 3}, FAST, python_path=[TOOLS]))
    assert result.status == "ok" and result.value == 5
    result = asyncio.run(run_callable("tools:slow_upper", {"text": "hi"}, FAST, python_path=[TOOLS]))
    assert result.value == "HI"
    result = asyncio.run(run_callable("tools:divide", {"a": 1, "b": 0}, FAST, python_path=[TOOLS]))
    assert result.status == "error" and result.exception == "ZeroDivisionError"
    result = asyncio.run(run_callable("tools:missing", {}, FAST, python_path=[TOOLS]))
    assert result.status == "error" and result.exception == "AttributeError"
    with pytest.raises(ValueError, match="module:function"):
        asyncio.run(run_callable("tools.add", {}, FAST))


def test_sandbox_from_a_thread_with_its_own_loop() -> None:
    box: list[SandboxResult] = []
    thread = threading.Thread(target=lambda: box.append(run("print(1)")))
    thread.start()
    thread.join(10)
    assert box and box[0].ok


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="cpu_seconds must be a positive integer"):
        Limits(cpu_seconds=0)
    with pytest.raises(ValueError, match="wall_seconds"):
        Limits(wall_seconds=-1)
    with pytest.raises(ValueError, match="memory_mb must be at least 64"):
        Limits(memory_mb=10)
    with pytest.raises(ValueError, match="unknown sandbox key.*cpu_second"):
        Limits.from_config({"cpu_second": 1})
    assert Limits.from_config({"cpu_seconds": 3}).cpu_seconds == 3
    assert sys.executable  # the child runs on the same interpreter


def test_output_printed_before_a_kill_is_kept() -> None:
    result = run("print('started', flush=False)\nwhile True:\n    pass")
    assert result.status == "timeout" and result.stdout == "started\n"
