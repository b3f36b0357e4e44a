"""Running a solution's unit tests in the sandbox, and saying why they failed.

The tests are Python source: plain ``assert`` statements, ``test_*`` functions, or both.
They run in the solution's namespace (``solution.py`` is also importable as the module
``solution``); every ``test_*`` function the tests define is then called with no
arguments, in order. The first failure ends the run. The reason a failure gives starts
with a fixed kind (``tests failed``, ``tests timed out``, ``tests ran out of memory``,
``syntax error``, ``no tests``) and keeps the end of the failing output.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from fms_dgt.sandbox.limits import Limits, SandboxResult
from fms_dgt.sandbox.runner import Sandbox, default_sandbox

HARNESS = """\
import sys, traceback, types

def _user_frames(exc):
    report = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    frames = [f for f in report.stack if f.filename in ("solution.py", "tests.py")]
    report.stack = traceback.StackSummary.from_list(frames)
    return "".join(report.format())

def _run(name, source, namespace):
    exec(compile(source, name, "exec"), namespace)

solution = types.ModuleType("solution")
solution.__file__ = "solution.py"
sys.modules["solution"] = solution
stage = "solution"
try:
    _run("solution.py", open("solution.py", encoding="utf-8").read(), solution.__dict__)
    namespace = dict(solution.__dict__, __name__="tests", __file__="tests.py")
    stage = "tests"
    _run("tests.py", open("tests.py", encoding="utf-8").read(), namespace)
    functions = [
        (name, f) for name, f in namespace.items()
        if name.startswith("test") and callable(f)
        and getattr(getattr(f, "__code__", None), "co_filename", None) == "tests.py"
    ]
    for stage, function in functions:
        function()
except MemoryError:
    raise
except Exception as exc:
    sys.stderr.write("FAILED in " + stage + "\\n" + _user_frames(exc))
    sys.exit(1)
print("passed: module-level asserts and", len(functions), "test function(s)")
"""

_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)


def strip_code_fences(text: str) -> str:
    """The code inside a Markdown fence (```python ... ```), or the text as it is."""
    match = _FENCE.match(text)
    return match.group(1) if match else text


def syntax_problem(source: str, what: str) -> str | None:
    """``syntax error: ...`` for source that does not parse, else None."""
    try:
        ast.parse(source, filename=what)
    except SyntaxError as exc:
        return f"syntax error: {what} line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. null bytes
        return f"syntax error: {what}: {exc}"
    return None


def tests_problem(tests: str) -> str | None:
    """``no tests: ...`` when the tests hold neither an assert nor a test_ function."""
    tree = ast.parse(tests)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            return None
    return "no tests: the tests hold no assert statement and no test_ function"


@dataclass
class TestRun:
    """What running one solution's tests gave: ``reason`` is None when they passed."""

    __test__ = False  # not a pytest class

    reason: str | None
    result: SandboxResult | None = None

    @property
    def passed(self) -> bool:
        return self.reason is None

    def summary(self) -> dict[str, object]:
        """Evidence kept on an accepted record (lineage)."""
        if self.result is None:
            return {"status": "not run", "reason": self.reason}
        return {
            "status": self.result.status,
            "wall_seconds": self.result.wall_seconds,
            "cpu_seconds": self.result.cpu_seconds,
            "layers": self.result.layers,
        }


def failure_reason(result: SandboxResult, limits: Limits, max_chars: int = 1500) -> str:
    """The rejection reason for tests that did not pass: the kind, then the output's end."""
    if result.status == "timeout":
        amount = limits.cpu_seconds if result.limit == "cpu" else limits.wall_seconds
        head = f"tests timed out: {result.limit} time limit of {amount} s"
    elif result.status == "memory":
        head = f"tests ran out of memory: limit {limits.memory_mb} MB"
    elif result.status == "killed":
        head = f"tests killed: signal {-(result.exit_code or 0)}"
    else:
        head = f"tests failed: exit code {result.exit_code}"
    tail = (result.stderr.strip() or result.stdout.strip())[-max_chars:]
    return f"{head}\n{tail}" if tail else head


async def run_python_tests(
    code: str, tests: str, limits: Limits | None = None, *, sandbox: Sandbox | None = None
) -> TestRun:
    """Check syntax, then run ``tests`` against ``code`` in the sandbox."""
    limits = limits or Limits()
    for source, what in ((code, "solution"), (tests, "tests")):
        problem = syntax_problem(source, what)
        if problem:
            return TestRun(problem)
    problem = tests_problem(tests)
    if problem:
        return TestRun(problem)
    box = sandbox or default_sandbox()
    result = await box.run_code(HARNESS, limits, files={"solution.py": code, "tests.py": tests})
    if result.ok:
        return TestRun(None, result)
    return TestRun(failure_reason(result, limits), result)
