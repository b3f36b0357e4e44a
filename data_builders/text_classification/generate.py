"""The ``text_classification`` builder: zero-shot labels from a fixed set.

Each row is one request (``prompts/classify.j2``: the task description, the labels with
their descriptions, the text). One label without explanation is a constrained choice
among the labels (``Constraint(choices=...)``); several labels (``multi_label``) or an
explanation are JSON constrained by a schema whose label items are an ``enum`` of the set.
The answer is checked again here: a label outside the set (from a server that ignores the
constraint), text that is not JSON or an empty explanation is a rejection with the reason
and the raw text. A record is the text, ``label`` or ``labels`` (in the set's order), the
``explanation`` if asked for, and ``model_name``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from fms_dgt import Constraint, LMResult, PromptTransformer, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash

from .task import Text, TextClassificationTask

_TEMPLATE_TEXT = (Path(__file__).parent / "prompts" / "classify.j2").read_text()
_TEMPLATE = jinja2.Template(_TEMPLATE_TEXT, undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
TEMPLATE_HASH = source_hash(_TEMPLATE_TEXT)
MAX_EXPLANATION = 200


@register_data_builder("text_classification")
class TextClassification(PromptTransformer):
    TASK_TYPE = TextClassificationTask
    KEEP_INVALID = True  # an answer off the constraint is a rejection with its text
    task: TextClassificationTask

    def prompt(self, row: Text) -> str:
        task = self.task
        return _TEMPLATE.render(
            task_description=task.task_description.strip(),
            labels=task.labels,
            descriptions=task.label_descriptions,
            multi_label=task.multi_label,
            explanation=task.explanation,
            text=row.text,
        )

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    @property
    def constraint(self) -> Constraint:
        task = self.task
        if not task.multi_label and not task.explanation:
            return Constraint(choices=list(task.labels))
        properties: dict[str, Any] = {}
        if task.explanation:  # first: the reasons, then the decision
            properties["explanation"] = {"type": "string", "minLength": 1, "maxLength": MAX_EXPLANATION}
        if task.multi_label:
            properties["labels"] = {
                "type": "array",
                "items": {"type": "string", "enum": list(task.labels)},
                "maxItems": len(task.labels),  # no label twice: a looping model stops
            }
        else:
            properties["label"] = {"type": "string", "enum": list(task.labels)}
        schema = {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
        return Constraint(json_schema=schema)

    # ---- reading the answer -----------------------------------------------------------------
    def _label(self, value: Any) -> str | None:
        """``value`` as one of the labels (exact, else the one equal ignoring case), or None."""
        if not isinstance(value, str):
            return None
        text = value.strip()
        if text in self.task.labels:
            return text
        folded = [label for label in self.task.labels if label.casefold() == text.casefold()]
        return folded[0] if len(folded) == 1 else None

    def _outside(self, value: Any) -> str:
        shown = value if isinstance(value, str) else json.dumps(value)
        return f"label '{shown.strip()[:80]}' is not one of the labels ({', '.join(self.task.labels)})"

    def read(self, text: str) -> tuple[dict[str, Any] | None, str | None]:
        """``(fields, None)`` or ``(None, why the answer cannot be used)``."""
        task = self.task
        if not task.multi_label and not task.explanation:
            label = self._label(text)
            return ({"label": label}, None) if label is not None else (None, self._outside(text))
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, f"unparseable answer: not JSON ({exc.msg})"
        if not isinstance(obj, dict):
            return None, f"unparseable answer: a JSON {type(obj).__name__}, not an object"
        fields: dict[str, Any] = {}
        if task.explanation:
            explanation = obj.get("explanation")
            if not isinstance(explanation, str) or not explanation.strip():
                return None, "unusable answer: no explanation"
            fields["explanation"] = explanation.strip()
        if task.multi_label:
            values = obj.get("labels")
            if not isinstance(values, list):
                return None, "unusable answer: 'labels' is not a list"
            chosen = set()
            for value in values:
                label = self._label(value)
                if label is None:
                    return None, self._outside(value)
                chosen.add(label)
            fields["labels"] = [label for label in task.labels if label in chosen]
        else:
            if obj.get("label") is None:
                return None, "unusable answer: no label"
            label = self._label(obj["label"])
            if label is None:
                return None, self._outside(obj["label"])
            fields["label"] = label
        return fields, None

    def parse(self, answer: str, row: Text) -> Any:
        fields, reason = self.read(answer)
        if fields is None:
            raw = {"input_id": row.id, "text": row.text, "output": answer}
            return Rejection(reason or "unusable answer", raw=raw, block="text_classification")
        return {"text": row.text, **fields}

    def records(self, produced: Any, result: LMResult, raw: Any, **lineage: Any) -> list[Any]:
        if isinstance(produced, dict):  # every record names the model that wrote it
            produced = {**produced, "model_name": result.model}
        return super().records(produced, result, raw, **lineage)
