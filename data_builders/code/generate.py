"""The ``code`` builder: Python exercises (problem statement, reference solution, unit
tests) written from seed exercises and/or topics, kept only when their tests pass.

Each call asks the engine for one exercise as JSON (``problem``, ``solution``, ``tests``),
shown the call's seed exercises and topic. Markdown fences around the code are removed.
Then, in order, each a rejection reason that names what went wrong:

1. ``syntax error``: the solution or the tests do not parse;
2. ``too few tests``: fewer assert statements than ``min_tests``;
3. the tests are run against the solution in the sandbox (fms_dgt.sandbox: separate
   process, CPU/wall/memory limits, no network, private folder, empty environment):
   ``tests failed``, ``tests timed out``, ``tests ran out of memory`` or ``tests killed``,
   with the end of the failing output (the traceback of the failing assert) kept.

Accepted records keep the run's status, durations and isolation layers in
``lineage.tests``. The tests of many records run at once, at most one child per core.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, Field

from fms_dgt import PromptBuilder, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash
from fms_dgt.sandbox.harness import TestRun, run_python_tests, strip_code_fences, syntax_problem

from .task import CodeProblem, CodeTask

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS), undefined=jinja2.StrictUndefined, autoescape=False
)
GENERATE = _ENV.get_template("generate.j2")
TEMPLATE_HASH = source_hash((_PROMPTS / "generate.j2").read_text())


class Exercise(BaseModel):
    """What the engine answers (the structured-output constraint)."""

    # bounded so that one answer fits the engine block's max_tokens (a cut-off JSON answer
    # is retried by the engine, costing a whole request)
    problem: str = Field(min_length=10, max_length=400)
    solution: str = Field(min_length=10, max_length=700)
    tests: str = Field(min_length=6, max_length=500)


def count_asserts(tests: str) -> int:
    return sum(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(tests)))


@register_data_builder("code")
class CodeBuilder(PromptBuilder):
    TASK_TYPE = CodeTask
    OUTPUT = Exercise
    ENGINE = "llm1"
    task: CodeTask

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    def prompt(self, examples: Sequence[Any], samples: dict[str, Any]) -> str:
        task = self.task
        return GENERATE.render(
            examples=examples,
            topic=samples.get("topic"),
            difficulty=task.difficulty,
            test_style=task.test_style,
            min_tests=task.min_tests,
        )

    def parse(self, answer: Any, examples: Sequence[Any], samples: dict[str, Any]) -> Any:
        solution = strip_code_fences(answer.solution.strip()).strip() + "\n"
        tests = strip_code_fences(answer.tests.strip()).strip() + "\n"
        raw = {"problem": answer.problem, "solution": solution, "tests": tests}
        for source, what in ((solution, "solution"), (tests, "tests")):
            problem = syntax_problem(source, what)
            if problem:
                return Rejection(problem, raw=raw, block="code")
        found = count_asserts(tests)
        if found < self.task.min_tests:
            reason = f"too few tests: {found} assert statement(s) < min_tests {self.task.min_tests}"
            return Rejection(reason, raw=raw, block="code")
        return {
            "problem": answer.problem.strip(),
            "solution": solution,
            "tests": tests,
            "topic": samples.get("topic"),
            "lineage": {"seed_ids": [e.id for e in examples if e.is_seed]},
        }

    def samples_for(self, request_idx: int) -> dict[str, Any]:
        samples = self.task.draw_samples(request_idx)
        topic = self.task.topic_for(request_idx)
        return {**samples, "topic": topic} if topic is not None else samples

    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        return await self.run_tests(await super().__call__(request_idx, seed_data))

    async def run_tests(self, produced: list[Any]) -> list[Any]:
        """Run every record's tests at once; a record whose tests do not pass becomes a
        Rejection holding the exercise, with the failing output in the reason."""
        records = [r for r in produced if isinstance(r, CodeProblem)]
        runs = await asyncio.gather(
            *(run_python_tests(r.solution, r.tests, self.task.limits) for r in records)
        )
        verdict: dict[int, TestRun] = {id(r): run for r, run in zip(records, runs)}
        out: list[Any] = []
        for item in produced:
            run = verdict.get(id(item))
            if run is None:
                out.append(item)
            elif run.passed:
                item.lineage["tests"] = run.summary()
                out.append(item)
            else:
                raw = {"problem": item.problem, "solution": item.solution, "tests": item.tests}
                out.append(Rejection(run.reason or "tests failed", raw=raw, block="code_tests"))
        return out
