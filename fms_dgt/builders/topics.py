"""Generation tasks whose calls may each be about a topic instead of (or besides) seeds.

Several catalogue builders (``evol_instruct``, ``code``) accept the same two ways of naming
topics: a ``topics:`` list in the task.yaml, taken in turn so that every topic gets its share,
or a category/subcategory sampler named ``topic`` (weighted draws, reproducible with the
seed). The checks and the choice live here once, so every such builder reports the same
located errors (both ways at once, an empty list, an empty topic, a sampler of another kind)
and makes seeds optional the same way.
"""

from __future__ import annotations

from typing import ClassVar

from fms_dgt.builders.samplers import CategorySampler, SubcategorySampler
from fms_dgt.datapoint import DataPoint
from fms_dgt.task import GenerationTask


class TopicsTask(GenerationTask):
    """A generation task with optional topics. Subclasses call ``read_topics`` in their
    constructor and say in ``NO_SEEDS`` / ``NO_SEEDS_HINT`` what a task with neither seeds
    nor topics lacks."""

    NO_SEEDS: ClassVar[str] = "this builder needs seed examples or topics"
    NO_SEEDS_HINT: ClassVar[str] = "add seed_examples: [...] or topics: [...]"
    topics: list[str] | None = None

    def read_topics(self, topics: list[str] | None) -> list[str] | None:
        """The task.yaml's ``topics`` checked and stripped (None when not given)."""
        sampler = self.samplers.specs.get("topic") if self.samplers else None
        if topics is not None and sampler is not None:
            raise self.config_error(
                "give the topics either as 'topics' or as a sampler named 'topic', not both", "topics"
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
        """Whether calls are about topics (``topics`` or a ``topic`` sampler)."""
        return self.topics is not None or bool(self.samplers and "topic" in self.samplers.specs)

    def topic_for(self, call_index: int) -> str | None:
        """The topic of call ``call_index``: the ``topics`` in turn, else the ``topic``
        sampler's draw, else None (the seeds alone guide the call)."""
        if self.topics is not None:
            return self.topics[call_index % len(self.topics)]
        if self.samplers and "topic" in self.samplers.specs:
            return str(self.draw_samples(call_index)["topic"])
        return None

    def load_seed_examples(self) -> list[DataPoint]:
        """Seeds are optional when calls are about topics."""
        if self._seed_configs == (None, None):
            if not self.from_topics:
                raise self.config_error(self.NO_SEEDS, hint=self.NO_SEEDS_HINT)
            self.seed_examples = []
            return []
        return super().load_seed_examples()
