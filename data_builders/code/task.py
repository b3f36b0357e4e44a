"""Task and record type of the ``code`` builder: Python exercises (a problem statement, a
reference solution and unit tests) whose tests are run against the solution in the sandbox
before the record is kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fms_dgt import DataPoint, GenerationTask
from fms_dgt.builders.samplers import CategorySampler, SubcategorySampler
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


class CodeTask(GenerationTask):
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
        self.topics = self._topics(topics)
        self.difficulty = difficulty
        self.test_style = test_style
        self.min_tests = min_tests

    def _topics(self, topics: list[str] | None) -> list[str] | None:
        sampler = self.samplers.specs.get("topic") if self.samplers else None
        if topics is not None and sampler is not None:
            raise self.config_error(
                "give topics either as 'topics' or as a sampler named 'topic', not both", "topics"
            )
        if sampler is not None and not isinstance(sampler, (CategorySampler, SubcategorySampler)):
            raise self.config_error(
                "the 'topic' sampler must be a category or subcategory sampler", "samplers", "topic", "type"
            )
        if topics is None:
            return None
        if not topics:
            raise self.config_error("topics is an empty list", "topics", hint="list at least one topic")
        for i, topic in enumerate(topics):
            if not topic.strip():
                raise self.config_error(f"topic {i} is empty", "topics", i)
        return [t.strip() for t in topics]

    @property
    def from_topics(self) -> bool:
        return self.topics is not None or bool(self.samplers and "topic" in self.samplers.specs)

    def load_seed_examples(self) -> list[DataPoint]:
        """Seeds are optional when exercises are written from topics."""
        if self._seed_configs == (None, None):
            if not self.from_topics:
                raise self.config_error(
                    "code needs seed exercises or topics to write exercises about",
                    hint="add seed_examples: [{problem: ..., solution: ..., tests: ...}] or topics: [...]",
                )
            self.seed_examples = []
            return []
        return super().load_seed_examples()

    def topic_for(self, call_index: int) -> str | None:
        """The topic of call ``call_index``: the ``topic`` sampler's value, else the topics in
        turn, else None (the seeds alone guide the call)."""
        if self.topics is not None:
            return self.topics[call_index % len(self.topics)]
        if self.samplers and "topic" in self.samplers.specs:
            return str(self.draw_samples(call_index)["topic"])
        return None
