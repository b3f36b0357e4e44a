"""The ``prometheus_eval`` builder: responses evaluated against a score rubric, the way
Prometheus judges do. ``mode: absolute``: one response, feedback and a score 1..5;
``mode: relative``: two responses, feedback and the better one (``A`` or ``B``). The rubric
(a criterion and what each score means) is one of the built-in ones
(``prompts/rubric_<name>.j2``), one of the task's ``rubrics`` or a text of the task's own;
a row's ``reference_answer``, when it has one, is shown as what a 5 looks like.

One request per row (``prompts/absolute.j2`` or ``relative.j2``), constrained to JSON
``{"feedback", "result"}`` (feedback first: the judge writes its grounds, then the verdict).
The builder checks the answer (fms_dgt/builders/judging.py): one that is not JSON, has a
score out of range or a result other than A or B (a tie, say) is a rejection with the raw
text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from fms_dgt import register_data_builder
from fms_dgt.builders.judging import Judge

from .task import PrometheusEvalTask


class AbsoluteAnswer(BaseModel):
    feedback: str = Field(max_length=500)
    result: int = Field(ge=1, le=5)


class RelativeAnswer(BaseModel):
    feedback: str = Field(max_length=500)
    result: Literal["A", "B"]


@register_data_builder("prometheus_eval")
class PrometheusEval(Judge):
    TASK_TYPE = PrometheusEvalTask
    OUTPUT = AbsoluteAnswer
    PROMPTS = Path(__file__).parent / "prompts"
    task: PrometheusEvalTask

    def output_model(self) -> type[BaseModel]:
        return RelativeAnswer if self.task.mode == "relative" else AbsoluteAnswer

    def prompt(self, row: Any) -> str:
        return self.render(f"{self.task.mode}.j2", **self._shown(row), rubric=self.task.rubric_text)

    def _shown(self, row: Any) -> dict[str, Any]:
        """The row's fields the prompt shows (a blank reference answer is none)."""
        fields = row.user_fields()
        fields["reference_answer"] = (row.reference_answer or "").strip() or None
        return fields

    def parse(self, answer: AbsoluteAnswer | RelativeAnswer, row: Any) -> Any:
        return {
            **self._shown(row),
            "rubric": self.task.rubric_name,
            "feedback": answer.feedback.strip(),
            "result": answer.result,
        }
