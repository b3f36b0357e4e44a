"""Task and record types of the ``text_classification`` builder: zero-shot labels from a
fixed set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.registry import did_you_mean

MAX_LABELS = 64


@dataclass(kw_only=True)
class Text(DataPoint):
    """An input row: the text to classify."""

    text: str


@dataclass(kw_only=True)
class Labelled(DataPoint):
    """The text and its one label (``multi_label: false``)."""

    text: str
    label: str
    model_name: str | None = None


@dataclass(kw_only=True)
class ExplainedLabel(Labelled):
    """With ``explanation: true``: why the model chose the label."""

    explanation: str = ""


@dataclass(kw_only=True)
class MultiLabelled(DataPoint):
    """The text and every label that applies (``multi_label: true``; possibly none), in
    the order of the task's ``labels``."""

    text: str
    labels: list[str] = field(default_factory=list)
    model_name: str | None = None


@dataclass(kw_only=True)
class ExplainedLabels(MultiLabelled):
    """With ``explanation: true``: why the model chose the labels."""

    explanation: str = ""


class TextClassificationTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``labels``: the label set, at least two distinct non-empty names.
    - ``label_descriptions``: optional mapping label -> what it means, shown to the model.
    - ``multi_label``: every label that applies (a list, possibly empty) instead of one.
    - ``explanation``: the model first says why (a JSON answer with ``explanation``).
    The task description is part of the prompt: say there what the labels are about.
    """

    INPUT_DATA_TYPE = Text
    OUTPUT_DATA_TYPE = Labelled

    def __init__(
        self,
        *,
        labels: list[str],
        label_descriptions: dict[str, str] | None = None,
        multi_label: bool = False,
        explanation: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.labels = self._labels(labels)
        self.label_descriptions = self._descriptions(label_descriptions or {})
        self.multi_label = multi_label
        self.explanation = explanation
        output = {
            (False, False): Labelled,
            (False, True): ExplainedLabel,
            (True, False): MultiLabelled,
            (True, True): ExplainedLabels,
        }[(multi_label, explanation)]
        self.OUTPUT_DATA_TYPE = output  # type: ignore[misc]

    def _labels(self, labels: list[str]) -> list[str]:
        if len(labels) < 2:
            got = "is empty" if not labels else f"has one label ('{labels[0]}')"
            raise self.config_error(
                f"labels {got}: a classification needs at least two labels",
                "labels",
                hint="list the labels, e.g. labels: [positive, negative, neutral]",
            )
        if len(labels) > MAX_LABELS:
            raise self.config_error(f"labels has {len(labels)} labels; at most {MAX_LABELS}", "labels")
        seen: dict[str, str] = {}
        for i, label in enumerate(labels):
            if not label.strip():
                raise self.config_error(f"label {i} is empty", "labels", i)
            if label != label.strip():
                raise self.config_error(
                    f"label '{label}' has spaces around it", "labels", i, hint=f"write '{label.strip()}'"
                )
            key = label.casefold()
            if key in seen:
                same = "is listed twice" if seen[key] == label else f"differs from '{seen[key]}' only in case"
                raise self.config_error(f"label '{label}' {same}", "labels", i, hint="list each label once")
            seen[key] = label
        return list(labels)

    def _descriptions(self, descriptions: dict[str, str]) -> dict[str, str]:
        for name, text in descriptions.items():
            if name not in self.labels:
                close = did_you_mean(name, self.labels)
                raise self.config_error(
                    f"label_descriptions names '{name}', which is not one of the labels",
                    "label_descriptions",
                    name,
                    hint=close or f"the labels: {', '.join(self.labels)}",
                )
            if not text.strip():
                raise self.config_error(
                    f"the description of '{name}' is empty",
                    "label_descriptions",
                    name,
                    hint="describe the label, or leave it out",
                )
        return {name: text.strip() for name, text in descriptions.items()}
