"""The ``code`` builder on the real default model: its example task, a small target. A
135M model writes wrong solutions and tests often; the point is the mechanics: every
exercise it writes is either kept with tests that really pass in the sandbox, or rejected
with one of the builder's reasons and the failing output. Exact outcomes (which solutions
pass, which fail) are tested against a scripted model in test_code_mechanics.py."""

from __future__ import annotations

import asyncio

import pytest

from fms_dgt.sandbox.harness import run_python_tests
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm

TASK = REPO / "tasks/examples/code/task.yaml"
KINDS = {
    ("code", "syntax error"),
    ("code", "too few tests"),
    ("code_tests", "tests failed"),
    ("code_tests", "tests timed out"),
    ("code_tests", "tests ran out of memory"),
    ("code_tests", "tests killed"),
    ("code_tests", "no tests"),
}


@pytest.mark.timeout(1200)  # each answer is ~400 tokens; on 2 busy cores a call can take a minute
def test_exercises_are_kept_only_when_their_tests_pass(run_example: RunExample) -> None:
    # two calls at a time, one window without a passing exercise ends the task (as stalled):
    # the 135M model rarely writes one, and the point here is what happens to what it writes
    rt, outcome = run_example(TASK, target=1, max_concurrent_calls=2, max_stalled_attempts=1)
    assert outcome.status in ("complete", "stalled"), outcome.message
    task_dir = rt.output_dir / "examples/code"
    kept = read_jsonl(task_dir / "data.jsonl") if (task_dir / "data.jsonl").exists() else []
    rejected_path = task_dir / "rejected.jsonl"
    rejected = read_jsonl(rejected_path) if rejected_path.exists() else []
    assert kept or rejected, "the model produced nothing at all"
    assert (outcome.status == "complete") == (len(kept) >= 1)
    limits = rt.prepared[0].task.limits  # type: ignore[attr-defined]
    for record in kept:
        assert record["topic"] in ("string manipulation", "lists of numbers", "counting things")
        assert record["lineage"]["tests"]["status"] == "ok"
        assert record["lineage"]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        # the kept tests really pass: run them again
        again = asyncio.run(run_python_tests(record["solution"], record["tests"], limits))
        assert again.passed, again.reason
    for rejection in rejected:
        kind = (rejection["block"], rejection["reason"].split(":")[0])
        if rejection["block"] in ("code", "code_tests"):
            assert kind in KINDS, rejection["reason"]
            assert set(rejection["record"]["raw"]) == {"problem", "solution", "tests"}
        if rejection["block"] == "code_tests" and kind[1] == "tests failed":
            assert "\n" in rejection["reason"]  # the failing output is kept
