"""Task and record type of the ``code`` builder: Python exercises (a problem statement, a
reference solution and unit tests) whose tests are run against the solution in the sandbox
before the record is kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fms_dgt import DataPoint
from fms_dgt.builders.topics import TopicsTask
from fms_dgt.sandbox.limits import LimitError, Limits

MAX_TESTS = 20
# the sandbox limits of the example task: generated tests of small functions need far less
DEFAULT_SANDBOX: dict[str, Any] = {"cpu_seconds": 2, "wall_seconds": 10, "memory_mb": 256}


@dataclass(kw_only=True)
class CodeProblem(DataPoint):
    """One exercise. ``tests`` is Python: asserts and/or ``test_*`` functions that use the
    names ``solution`` defines. ``topic`` is the topic it was written for (None from seeds)."""

    problem: str
    solution: str
    tests: str
    topic: str | None = None


class CodeTask(TopicsTask):
    """task.yaml keys (besides the usual ones):

    - ``topics``: topics to write exercises about, one per call in turn (or a sampler named
      ``topic`` under ``samplers:``). With topics, seed examples are optional.
    - ``difficulty``: ``easy`` (default), ``medium`` or ``hard``, as the prompt words it.
    - ``test_style``: ``asserts`` (plain assert lines, default) or ``function`` (one
      ``test_solution()`` function).
    - ``min_tests``: assert statements the tests must hold (1..20, default 3).
    - ``sandbox``: limits for running the tests (docs/sandbox.md); default
      ``{cpu_seconds: 2, wall_seconds: 10, memory_mb: 256}``.
    """

    NO_SEEDS = "code needs seed exercises or topics to write exercises about"
    NO_SEEDS_HINT = "add seed_examples: [{problem: ..., solution: ..., tests: ...}] or topics: [...]"
    INPUT_DATA_TYPE = CodeProblem
    OUTPUT_DATA_TYPE = CodeProblem

    def __init__(
        self,
        *,
        topics: list[str] | None = None,
        difficulty: Literal["easy", "medium", "hard"] = "easy",
        test_style: Literal["asserts", "function"] = "asserts",
        min_tests: int = 3,
        sandbox: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= min_tests <= MAX_TESTS:
            raise self.config_error(
                f"min_tests must be between 1 and {MAX_TESTS}, got {min_tests}",
                "min_tests",
                hint="3 to 5 asserts check a small function well",
            )
        try:
            self.limits = Limits.from_config({**DEFAULT_SANDBOX, **(sandbox or {})})
        except LimitError as exc:
            keys = ("sandbox", exc.key) if sandbox and exc.key in sandbox else ("sandbox",)
            raise self.config_error(str(exc), *keys, hint="see docs/sandbox.md for the keys") from None
        self.topics = self.read_topics(topics)
        self.difficulty = difficulty
        self.test_style = test_style
        self.min_tests = min_tests
