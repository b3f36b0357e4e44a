"""The ``prompt`` builder: a generation task written in its task.yaml alone.

::

    data_builder: prompt
    prompt: |
      Write a {{ difficulty }} question about {{ topic }} for: {{ task_description }}
      {% for ex in examples %}Example: {{ ex.question }} -> {{ ex.answer }}
      {% endfor %}
    output:
      question: {type: string, min_length: 10}
      answer: {type: string}
      level: {type: string, enum: [easy, hard]}
    samplers:
      topic: {type: category, values: [optics, tides]}
      difficulty: {type: category, values: [easy, hard]}

The template sees ``examples`` (the in-context records), ``task_description``, ``samples``
and each sampler's value by its name. The output fields become the records' fields and the
JSON schema the model is constrained to. A template variable nothing provides, or an output
field that a filter or formatter reads and the output lacks, is an error at --validate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fms_dgt import PromptBuilder, register_data_builder
from fms_dgt.engines.types import Constraint, LMResult

from .task import PromptTask


@register_data_builder("prompt")
class PromptTemplateBuilder(PromptBuilder):
    TASK_TYPE = PromptTask
    task: PromptTask

    @property
    def constraint(self) -> Constraint | None:
        return self.task.constraint

    def prompt_hash(self) -> str:
        return self.task.template_hash

    def prompt(self, examples: Sequence[Any], samples: dict[str, Any]) -> str | list[dict[str, Any]]:
        return self.task.render(examples, samples)

    def answers(self, result: LMResult) -> list[Any]:
        return list(result.parsed or []) if self.task.constraint is not None else list(result.texts)

    def parse(self, answer: Any, examples: Sequence[Any], samples: dict[str, Any]) -> Any:
        return answer if isinstance(answer, dict) else {"text": answer}
