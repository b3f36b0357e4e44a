"""``code`` mechanics against a scripted model (tests/catalogue/scripted_model.py): some
solutions pass their tests and some do not (a wrong answer, an endless loop, 4 GB, a
socket, a syntax error, too few tests); exactly the failing ones are rejected, each with
its reason and the failing output, and the passing ones are kept with the run's evidence.
The same builder runs on the real model in test_code.py."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.catalogue.scripted_model import run_scripted


def exercise(problem: str, solution: str, tests: str) -> str:
    return json.dumps({"problem": problem, "solution": solution, "tests": tests})


ADD_ONE = "def add_one(n):\n    return n + 1\n"
SCRIPT = [
    (
        "pass",
        exercise(
            "Write add_one(n) returning n plus one.",
            ADD_ONE,
            "assert add_one(1) == 2\nassert add_one(-1) == 0",
        ),
    ),
    (
        "fail",
        exercise(
            "Write double(n) returning twice n.",
            "def double(n):\n    return n + n\n",
            "assert double(2) == 4\nassert double(3) == 7, 'three'",
        ),
    ),
    (
        "loop",
        exercise(
            "Write spin() that returns nothing.",
            "def spin():\n    while True:\n        pass\n",
            "assert spin() is None\nassert True",
        ),
    ),
    (
        "pass",
        exercise(
            "Write shout(text) returning text in upper case.",
            "```python\ndef shout(text):\n    return text.upper()\n```",
            "```python\ndef test_solution():\n    assert shout('a') == 'A'\n    assert shout('') == ''\n```",
        ),
    ),
    (
        "syntax",
        exercise(
            "Write half(n) returning n divided by two.",
            "def half(n)\n    return n / 2\n",
            "assert half(2) == 1\nassert half(0) == 0",
        ),
    ),
    (
        "few",
        exercise("Write neg(n) returning minus n.", "def neg(n):\n    return -n\n", "assert neg(1) == -1"),
    ),
    (
        "memory",
        exercise(
            "Write big() returning a large buffer.",
            "def big():\n    return bytearray(4 * 1024 ** 3)\n",
            "assert big()\nassert True",
        ),
    ),
    (
        "socket",
        exercise(
            "Write fetch() that opens a connection.",
            "import socket\ndef fetch():\n    return socket.create_connection(('127.0.0.1', 9))\n",
            "assert fetch()\nassert True",
        ),
    ),
    (
        "pass",
        exercise(
            "Write square(n) returning n times n.",
            "def square(n):\n    return n * n\n",
            "assert square(3) == 9\nassert square(0) == 0\nassert square(-2) == 4",
        ),
    ),
]

SEEDS = [
    {
        "problem": "Write a function add(a, b) that returns the sum of a and b.",
        "solution": "def add(a, b):\n    return a + b\n",
        "tests": "assert add(1, 2) == 3\nassert add(0, 0) == 0\n",
    }
]


def _task(**extra: Any) -> dict[str, Any]:
    return {
        "task_name": "code/mechanics",
        "task_description": "Small Python exercises.",
        "created_by": "tests",
        "data_builder": "code",
        "seed_examples": SEEDS,
        "topics": ["strings", "numbers"],
        "min_tests": 2,
        "sandbox": {"cpu_seconds": 1, "wall_seconds": 5, "memory_mb": 256},
        **extra,
    }


def test_failing_exercises_are_rejected_with_their_output(tmp_path: Path) -> None:
    calls = itertools.count()

    def answer(prompt: str, structured: bool) -> str:
        return SCRIPT[next(calls)][1]

    run = run_scripted(_task(), tmp_path, answer, num_outputs_to_generate=3, max_concurrent_calls=1)
    assert run.outcome.status == "complete", run.outcome.message
    assert len(run.bodies) == len(SCRIPT)
    prompts = [b["messages"][-1]["content"] for b in run.bodies]
    assert "about strings" in prompts[0] and "about numbers" in prompts[1] and "about strings" in prompts[2]
    assert SEEDS[0]["problem"] in prompts[0] and "at least 2 lines" in prompts[0]
    schema = run.bodies[0]["response_format"]["json_schema"]["schema"]
    assert set(schema["required"]) == {"problem", "solution", "tests"}

    final = run.store("final_data")
    assert [r["problem"].split("(")[0] for r in final] == ["Write add_one", "Write shout", "Write square"]
    shout = final[1]
    assert shout["solution"] == "def shout(text):\n    return text.upper()\n"  # fences removed
    assert shout["tests"].startswith("def test_solution():")
    for record in final:
        tests = record["lineage"]["tests"]
        assert tests["status"] == "ok" and tests["wall_seconds"] > 0 and "audit-hook" in tests["layers"]
        assert record["lineage"]["seed_ids"] == [run.runtime.prepared[0].task.seed_examples[0].id]  # type: ignore[attr-defined]
        assert record["topic"] in ("strings", "numbers")

    rejected = run.store("rejected")
    kinds = Counter((r["block"], r["reason"].split(":")[0]) for r in rejected)
    assert kinds == {
        ("code_tests", "tests failed"): 2,  # the wrong answer and the socket
        ("code_tests", "tests timed out"): 1,
        ("code_tests", "tests ran out of memory"): 1,
        ("code", "syntax error"): 1,
        ("code", "too few tests"): 1,
    }
    by_problem = {r["record"]["raw"]["problem"].split("(")[0]: r for r in rejected}
    fail = by_problem["Write double"]
    assert "AssertionError: three" in fail["reason"] and 'File "tests.py", line 2' in fail["reason"]
    assert fail["record"]["raw"]["solution"].startswith("def double(n):")  # the exercise is kept with it
    assert by_problem["Write spin"]["reason"].startswith("tests timed out: cpu time limit of 1 s")
    assert "MemoryError" in by_problem["Write big"]["reason"]
    assert "network access is not allowed" in by_problem["Write fetch"]["reason"]
    assert by_problem["Write half"]["reason"] == "syntax error: solution line 1: expected ':'"
    assert by_problem["Write neg"]["reason"] == "too few tests: 1 assert statement(s) < min_tests 2"
