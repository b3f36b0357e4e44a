"""Running code in the sandbox from asyncio: one child process per run, bounded concurrency.

The parent never blocks its event loop: the child is started with
``asyncio.create_subprocess_exec`` in a new session (so it and everything it starts share a
process group the runner can kill at once), with an empty environment (no inherited
variable, so no secret in one reaches the code), in a fresh temporary folder that is
removed afterwards. stdout and stderr are read as they come and only their ends are kept,
so code that prints forever cannot fill the parent's memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from fms_dgt.sandbox.limits import Limits, SandboxResult, Status

CHILD = Path(__file__).with_name("child.py")
_CHUNK = 65536


class _Tail:
    """The last ``size`` characters of a stream (plus how much was dropped)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data = bytearray()
        self.dropped = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_CHUNK):
            self.data += chunk
            excess = len(self.data) - 4 * self.size  # bytes; decoded and cut to chars below
            if excess > 0:
                del self.data[:excess]
                self.dropped += excess

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")[-self.size :]
        return ("[...]\n" if self.dropped or len(self.data) > len(text) else "") + text


class Sandbox:
    """Runs jobs with at most ``max_concurrency`` children alive at once.

    One per event loop is created by the module functions (``run_code``, ``run_callable``);
    a builder that wants its own bound makes its own.
    """

    def __init__(self, max_concurrency: int | None = None) -> None:
        self.max_concurrency = max_concurrency or max(1, os.cpu_count() or 1)
        self._slots = asyncio.Semaphore(self.max_concurrency)

    async def run_code(
        self, code: str, limits: Limits | None = None, *, files: dict[str, str] | None = None
    ) -> SandboxResult:
        """Run ``code`` as ``main.py`` (``__main__``) in a new folder holding ``files`` too."""
        return await self._run(
            {"kind": "code", "entry": "main.py"}, limits, {**(files or {}), "main.py": code}
        )

    async def run_callable(
        self,
        target: str,
        arguments: dict[str, Any],
        limits: Limits | None = None,
        *,
        python_path: list[str] | None = None,
        files: dict[str, str] | None = None,
    ) -> SandboxResult:
        """Call ``module:function(**arguments)`` (a coroutine function is awaited); its
        JSON-serialisable return value is ``result.value``. ``python_path`` lists folders the
        module is imported from (read-only for the code)."""
        if ":" not in target:
            raise ValueError(f"target must look like 'module:function', got {target!r}")
        json.dumps(arguments)  # arguments travel as JSON: fail here, not in the child
        job = {
            "kind": "callable",
            "target": target,
            "arguments": arguments,
            "python_path": [str(Path(p).resolve()) for p in python_path or []],
        }
        return await self._run(job, limits, files or {})

    async def _run(self, job: dict[str, Any], limits: Limits | None, files: dict[str, str]) -> SandboxResult:
        limits = limits or Limits()
        async with self._slots:
            folder = tempfile.mkdtemp(prefix="dgt-sandbox-")
            try:
                for name, text in files.items():
                    path = Path(folder, name)
                    if path.resolve().parent != Path(folder).resolve():
                        raise ValueError(f"sandbox file names must be plain names, got {name!r}")
                    path.write_text(text, encoding="utf-8")
                return await self._spawn({**job, **_job_limits(limits), "folder": folder}, limits)
            finally:
                shutil.rmtree(folder, ignore_errors=True)

    async def _spawn(self, job: dict[str, Any], limits: Limits) -> SandboxResult:
        start = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # isolated: no PYTHON* variables, no user site-packages, not the cwd on sys.path
            "-u",  # unbuffered: what a job printed before it was killed is still seen
            str(CHILD),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # nothing inherited (no secret in an environment variable reaches the job); temp
            # files and a home directory point into the job's own folder
            env={"HOME": job["folder"], "TMPDIR": job["folder"]},
            cwd=job["folder"],
            start_new_session=True,
        )
        out, err = _Tail(limits.output_chars), _Tail(limits.output_chars)
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
        readers = asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr))
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout=limits.wall_seconds)
        except asyncio.TimeoutError:
            timed_out = True
        finally:
            _kill_group(proc.pid)  # also the children of a finished child
            if proc.returncode is None:
                await proc.wait()
        try:
            await asyncio.wait_for(readers, timeout=2.0)  # a grandchild may hold a pipe open
        except asyncio.TimeoutError:
            pass
        wall = time.monotonic() - start
        setup = _read_json(Path(job["folder"], ".setup.json"))
        outcome = _read_json(Path(job["folder"], ".outcome.json"))
        status, limit = _classify(proc.returncode, timed_out, outcome, err.text(), wall, limits)
        return SandboxResult(
            status=status,
            exit_code=proc.returncode,
            stdout=out.text(),
            stderr=err.text(),
            wall_seconds=round(wall, 3),
            cpu_seconds=outcome.get("cpu_seconds"),
            limit=limit,
            exception=outcome.get("exception"),
            value=outcome.get("return"),
            layers=list(setup.get("layers", [])),
            problems=list(setup.get("problems", [])),
        )


def _job_limits(limits: Limits) -> dict[str, Any]:
    return {
        "cpu_seconds": limits.cpu_seconds,
        "memory_mb": limits.memory_mb,
        "max_processes": limits.max_processes,
        "max_file_mb": limits.max_file_mb,
        "allow_network": limits.allow_network,
        "allow_subprocess": limits.allow_subprocess,
        "read_only": limits.read_only,
        "pid_namespace": limits.pid_namespace,
    }


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _classify(
    code: int | None, timed_out: bool, outcome: dict[str, Any], stderr: str, wall: float, limits: Limits
) -> tuple[Status, str | None]:
    if timed_out:
        return "timeout", "wall"
    if code is not None and code < 0:
        # RLIMIT_CPU kills with SIGKILL (the child sets soft == hard). A SIGKILL the runner
        # did not send, after at least cpu_seconds of elapsed time, is taken as that limit
        # (CPU time never runs ahead of wall time for one thread; an out-of-memory kill that
        # late would be misnamed). SIGXCPU comes from code that lowered its own limit.
        if -code == signal.SIGXCPU or (-code == signal.SIGKILL and wall >= limits.cpu_seconds):
            return "timeout", "cpu"
        return "killed", None
    if outcome.get("exception") == "MemoryError" or (not outcome and "MemoryError" in stderr):
        return "memory", "memory"
    return ("ok", None) if code == 0 else ("error", None)


_DEFAULT: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Sandbox] = weakref.WeakKeyDictionary()


def default_sandbox() -> Sandbox:
    """The sandbox shared by the module functions on the running event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _DEFAULT:
        _DEFAULT[loop] = Sandbox()
    return _DEFAULT[loop]


async def run_code(
    code: str, limits: Limits | None = None, *, files: dict[str, str] | None = None
) -> SandboxResult:
    """Run Python ``code`` in the sandbox (see ``Sandbox.run_code``)."""
    return await default_sandbox().run_code(code, limits, files=files)


async def run_callable(
    target: str,
    arguments: dict[str, Any],
    limits: Limits | None = None,
    *,
    python_path: list[str] | None = None,
) -> SandboxResult:
    """Call ``module:function(**arguments)`` in the sandbox (see ``Sandbox.run_callable``)."""
    return await default_sandbox().run_callable(target, arguments, limits, python_path=python_path)
