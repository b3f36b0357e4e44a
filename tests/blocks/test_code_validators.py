"""python_syntax and python_tests: generated code is parsed, then its tests are run in the
sandbox; every failure is a rejection whose reason keeps the failing output."""

from __future__ import annotations

import asyncio
import threading

import pytest

from fms_dgt.blocks.base import FilterPostprocessor
from fms_dgt.blocks.chain import FilterChain
from fms_dgt.blocks.code import PythonSyntax, PythonTests
from fms_dgt.blocks.validators import JsonSchemaFilter
from fms_dgt.errors import ConfigError
from fms_dgt.sandbox.harness import strip_code_fences

SOLUTION = "def add(a, b):\n    return a + b\n"
FAST = {"cpu_seconds": 1, "wall_seconds": 4, "memory_mb": 256}


def test_python_syntax() -> None:
    block = PythonSyntax(fields=["code", "tests"])
    assert block.check({"code": SOLUTION, "tests": "assert add(1, 2) == 3"}) is None
    assert (
        block.check({"code": "def f(:\n  pass", "tests": "x"}) == "syntax error: code line 1: invalid syntax"
    )
    assert block.check({"code": SOLUTION, "tests": ""}) == "field 'tests' is empty"
    assert PythonSyntax().fields == ["code"]


def _check(record: dict[str, str], **kw: object) -> str | None:
    return asyncio.run(PythonTests(sandbox=FAST, **kw).acheck(record))  # type: ignore[arg-type]


def test_passing_tests_keep_the_evidence() -> None:
    record = {
        "code": SOLUTION,
        "tests": "assert add(1, 2) == 3\n\ndef test_neg():\n    assert add(-1, -1) == -2\n",
    }
    assert _check(record) is None
    evidence = record["lineage"]["tests"]  # type: ignore[index]
    assert evidence["status"] == "ok" and evidence["wall_seconds"] > 0


def test_failing_assert_is_rejected_with_its_output() -> None:
    reason = _check(
        {"code": SOLUTION, "tests": "assert add(1, 2) == 3\nassert add(2, 2) == 5, 'two and two'\n"}
    )
    assert reason is not None and reason.startswith("tests failed: exit code 1\nFAILED in tests\n")
    assert 'File "tests.py", line 2' in reason and "AssertionError: two and two" in reason
    assert "main.py" not in reason  # the harness's own frames are left out


def test_failing_test_function_is_named() -> None:
    tests = "def test_ok():\n    assert add(0, 0) == 0\n\ndef test_bad():\n    assert add(1, 1) == 3\n"
    reason = _check({"code": SOLUTION, "tests": tests})
    assert reason is not None and "FAILED in test_bad" in reason


def test_test_functions_are_called() -> None:
    # a test function that is never called would let a wrong solution pass
    reason = _check({"code": SOLUTION, "tests": "def test_bad():\n    assert add(1, 1) == 3\n"})
    assert reason is not None and "FAILED in test_bad" in reason


def test_solution_that_raises_on_import() -> None:
    reason = _check({"code": "raise RuntimeError('boom')", "tests": "assert True"})
    assert reason is not None and "FAILED in solution" in reason and "RuntimeError: boom" in reason


def test_timeouts_memory_syntax_and_no_tests() -> None:
    slow = {"code": "def f():\n    while True:\n        pass\n", "tests": "assert f() is None"}
    assert (_check(slow) or "").startswith("tests timed out: cpu time limit of 1 s")
    big = {"code": "def f():\n    return bytearray(4 * 1024 ** 3)\n", "tests": "assert f()"}
    reason = _check(big) or ""
    assert reason.startswith("tests ran out of memory: limit 256 MB") and "MemoryError" in reason
    assert _check({"code": "def f(:", "tests": "assert 1"}) == "syntax error: solution line 1: invalid syntax"
    assert _check({"code": SOLUTION, "tests": "print(add(1, 2))"}) == (
        "no tests: the tests hold no assert statement and no test_ function"
    )
    assert _check({"code": SOLUTION, "tests": ""}) == "field 'tests' is empty"


def test_tests_that_open_sockets_or_write_outside_fail() -> None:
    reason = _check({"code": "import socket\ndef f():\n    return socket.socket()\n", "tests": "assert f()"})
    assert reason is not None and "network access is not allowed" in reason


def test_chain_runs_it_as_an_async_filter_and_postprocessing_as_sync() -> None:
    block = PythonTests(name="tests_pass", code_field="solution", sandbox=FAST)
    chain = FilterChain([block])
    assert block in chain.async_filters
    bad = {"solution": SOLUTION, "tests": "assert add(1, 1) == 3"}
    verdict = asyncio.run(chain.verdict(bad))
    assert verdict is not None and verdict[0] == "tests_pass" and verdict[1].startswith("tests failed")
    # postprocessing calls check() from a worker thread
    pp = FilterPostprocessor(block)
    kept: list[dict[str, str]] = []
    thread = threading.Thread(
        target=lambda: kept.extend(
            pp.process([bad, {"solution": SOLUTION, "tests": "assert add(1, 1) == 2"}])
        )
    )
    thread.start()
    thread.join(30)
    assert len(kept) == 1 and len(pp.rejected) == 1


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="did you mean 'cpu_seconds'"):
        PythonTests(sandbox={"cpu_second": 1})
    with pytest.raises(ConfigError, match="must be a mapping"):
        PythonTests(sandbox=[1])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a valid JSON schema: at type"):
        JsonSchemaFilter(field="x", schema={"type": "objekt"})
    with pytest.raises(ConfigError, match="schema must be a mapping"):
        JsonSchemaFilter(field="x", schema="string")  # type: ignore[arg-type]


def test_strip_code_fences() -> None:
    assert strip_code_fences("```python\nx = 1\n```") == "x = 1"
    assert strip_code_fences("```\nx = 1\n```\n") == "x = 1"
    assert strip_code_fences("x = 1") == "x = 1"
