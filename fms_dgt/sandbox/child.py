"""The sandbox child: started as ``python -I child.py`` by the runner, stdlib only.

Order matters, and is the reason this is a separate program rather than a ``preexec_fn``
(which is unsafe in a threaded parent such as one running vLLM):

1. read the job (JSON) from stdin, then point stdin at /dev/null;
2. enter namespaces (network, read-only mounts, pid) where the kernel allows;
3. set resource limits (CPU seconds, address space, processes, file size, no core dumps);
4. install the audit hook;
5. run the code (a file, as ``__main__``) or call ``module:function(**arguments)``;
6. write the outcome (exception type, return value) to ``.outcome.json`` in the folder.

The runner classifies the run from the exit status, the outcome file and its own clocks.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import traceback
from typing import Any

OUTCOME = ".outcome.json"
SETUP = ".setup.json"


def _set_limits(job: dict[str, Any]) -> None:
    cpu = int(job["cpu_seconds"])
    # soft == hard: SIGKILL at the limit. (SIGXCPU at a lower soft limit would be ignored by
    # the kernel when the code runs as pid 1 of a pid namespace and has no handler for it.)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    memory = int(job["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NPROC, (job["max_processes"], job["max_processes"]))
    size = int(job["max_file_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    # a write past the size limit raises OSError(EFBIG) instead of killing the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _write_json(name: str, data: dict[str, Any]) -> None:
    try:
        text = json.dumps(data, default=repr)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"exception": "TypeError", "message": f"result is not JSON: {exc}"})
    with open(name, "w", encoding="utf-8") as fh:
        fh.write(text)


def _run(job: dict[str, Any]) -> dict[str, Any]:
    """Run the user's code; return the outcome (never raises, except SystemExit)."""
    try:
        if job["kind"] == "code":
            import runpy

            runpy.run_path(job["entry"], run_name="__main__")
            return {}
        import asyncio
        import importlib
        import inspect

        module_name, _, attr = job["target"].partition(":")
        func: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            func = getattr(func, part)
        value = func(**job["arguments"])
        if inspect.iscoroutine(value):
            value = asyncio.run(value)
        return {"return": value}
    except SystemExit:
        raise
    except BaseException as exc:  # reported to the runner, which decides the status
        _print_user_traceback(exc)
        return {"exception": type(exc).__name__, "message": str(exc)[:2000]}


def _print_user_traceback(exc: BaseException) -> None:
    """The traceback without the sandbox's own frames (this file, runpy, the audit hook):
    the rejection reason should show the user's code."""
    here = os.path.dirname(os.path.abspath(__file__))
    report = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    frames = [f for f in report.stack if not (f.filename.startswith(here) or "runpy" in f.filename)]
    report.stack = traceback.StackSummary.from_list(frames)
    sys.stderr.write("".join(report.format()))


def _wait_for(child: int) -> None:
    """The outer process of a pid namespace: exit the way pid 1 did."""
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status))


def main() -> None:
    job = json.loads(sys.stdin.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    folder = job["folder"]
    os.chdir(folder)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file from any signal below
    sys.path[0] = folder  # the job's own modules, not this file's folder
    sys.path[1:1] = job.get("python_path", [])

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.append(here)
    import guard
    import namespaces

    sys.path.remove(here)
    layers, problems = namespaces.isolate(
        folder, network=job["allow_network"], read_only=job["read_only"], pid=job["pid_namespace"]
    )
    os.chdir(folder)  # onto the writable bind mount (the old cwd is on the read-only one)
    if "pid-namespace" in layers:
        child = os.fork()  # only children enter the new pid namespace
        if child:
            _wait_for(child)
    _set_limits(job)
    layers.append("rlimits")
    guard.install(folder, allow_subprocess=job["allow_subprocess"], allow_network=job["allow_network"])
    layers.append("audit-hook")
    _write_json(SETUP, {"layers": layers, "problems": problems})
    outcome = _run(job)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    outcome["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    _write_json(OUTCOME, outcome)
    sys.stdout.flush()
    sys.exit(1 if "exception" in outcome else 0)


if __name__ == "__main__":
    main()
