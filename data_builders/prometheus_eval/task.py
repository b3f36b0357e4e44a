"""Task and record types of the ``prometheus_eval`` builder: responses evaluated against a
score rubric, Prometheus style: ``absolute`` (one response: feedback and a score 1..5) or
``relative`` (two responses: feedback and the better one, A or B), each with an optional
reference answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.registry import did_you_mean

Mode = Literal["absolute", "relative"]
PROMPTS = Path(__file__).parent / "prompts"
# the built-in rubrics: prompts/rubric_<name>.j2 (a criterion and what each score 1..5 means)
BUILTIN_RUBRICS = ("helpfulness", "harmlessness", "honesty", "factual_validity", "reasoning")


def _check_texts(row: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(row, name)
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a text, got {type(value).__name__}")
    ref = row.reference_answer
    if ref is not None and not isinstance(ref, str):
        raise ValueError(f"reference_answer must be a text, got {type(ref).__name__}")


@dataclass(kw_only=True)
class AbsoluteRow(DataPoint):
    """An input row of ``mode: absolute``: the instruction, the response to score and,
    optionally, a reference answer (one that would score 5)."""

    instruction: str
    response: str
    reference_answer: str | None = None

    def __post_init__(self) -> None:
        _check_texts(self, ("instruction", "response"))
        super().__post_init__()


@dataclass(kw_only=True)
class RelativeRow(DataPoint):
    """An input row of ``mode: relative``: the instruction, the two responses to compare
    and, optionally, a reference answer."""

    instruction: str
    response_a: str
    response_b: str
    reference_answer: str | None = None

    def __post_init__(self) -> None:
        _check_texts(self, ("instruction", "response_a", "response_b"))
        super().__post_init__()


@dataclass(kw_only=True)
class AbsoluteVerdict(DataPoint):
    """The row with the judge's ``feedback`` and ``result``, a score 1..5, against
    ``rubric`` (its name, or ``custom`` for a rubric given as text)."""

    instruction: str
    response: str
    rubric: str
    feedback: str
    result: int
    reference_answer: str | None = None
    model_name: str | None = None


@dataclass(kw_only=True)
class RelativeVerdict(DataPoint):
    """The row with the judge's ``feedback`` and ``result``: ``A`` or ``B``, the better
    response against ``rubric``."""

    instruction: str
    response_a: str
    response_b: str
    rubric: str
    feedback: str
    result: str
    reference_answer: str | None = None
    model_name: str | None = None


class PrometheusEvalTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``mode``: ``absolute`` (default; rows have ``instruction``, ``response``) or
      ``relative`` (rows have ``instruction``, ``response_a``, ``response_b``). Rows may
      have a ``reference_answer``.
    - ``rubric``: the name of a rubric (built in: helpfulness (default), harmlessness,
      honesty, factual_validity, reasoning; or one of ``rubrics``), or a rubric written out
      as text (anything with a space in it).
    - ``rubrics``: a mapping of your own rubrics, name -> text (a criterion and what each
      score means), that ``rubric`` can name.
    """

    INPUT_DATA_TYPE: ClassVar[type[DataPoint]] = AbsoluteRow  # RelativeRow in mode: relative
    OUTPUT_DATA_TYPE: ClassVar[type[DataPoint]] = AbsoluteVerdict

    def __init__(
        self,
        *,
        mode: Mode = "absolute",
        rubric: str = "helpfulness",
        rubrics: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.mode = mode
        if mode == "relative":
            self.INPUT_DATA_TYPE = RelativeRow  # type: ignore[misc]
            self.OUTPUT_DATA_TYPE = RelativeVerdict  # type: ignore[misc]
        super().__init__(**kwargs)
        self.rubric_name, self.rubric_text = self._rubric(rubric, self._rubrics(rubrics or {}))

    def _rubrics(self, given: dict[str, str]) -> dict[str, str]:
        """The rubrics ``rubric`` can name: the built-in ones, then the task's own."""
        known = {name: (PROMPTS / f"rubric_{name}.j2").read_text().strip() for name in BUILTIN_RUBRICS}
        for name, text in given.items():
            if not name.isidentifier():
                raise self.config_error(
                    f"rubric name '{name}' is not one word",
                    "rubrics",
                    name,
                    hint="name it like a variable, e.g. concise",
                )
            if not text.strip():
                raise self.config_error(f"rubric '{name}' is empty", "rubrics", name)
            known[name] = text.strip()
        return known

    def _rubric(self, rubric: str, known: dict[str, str]) -> tuple[str, str]:
        """``(name, text)`` of the rubric ``rubric`` names or is (``custom`` for a text)."""
        text = rubric.strip()
        if not text:
            raise self.config_error("rubric is empty", "rubric", hint=f"name one of: {', '.join(known)}")
        if any(ch.isspace() for ch in text):
            return "custom", text
        if text not in known:
            raise self.config_error(
                f"unknown rubric '{text}'",
                "rubric",
                hint=did_you_mean(text, list(known))
                or f"rubrics: {', '.join(known)}; or write the rubric itself as text",
            )
        return text, known[text]

    def _input_from(
        self,
        raw: Any,
        *,
        source: tuple[Path | None, int | None],
        keys: tuple[Any, ...],
        what: str,
        **extra: Any,
    ) -> DataPoint:
        """A row with the other mode's fields (and not this mode's) is a mode mistake: say so,
        rather than that ``response_a`` looks like a misspelling of ``response``."""
        if isinstance(raw, dict):
            other, other_type = (
                ("relative", RelativeRow) if self.mode == "absolute" else ("absolute", AbsoluteRow)
            )
            own = [f for f in self.INPUT_DATA_TYPE.required_fields() if f not in other_type.required_fields()]
            if not any(f in raw for f in own) and all(f in raw for f in other_type.required_fields()):
                raise self._located(
                    f"{what} has the fields of mode: {other} ({', '.join(other_type.required_fields())}), "
                    f"not those of this task's mode: {self.mode} ({', '.join(self.INPUT_DATA_TYPE.required_fields())})",
                    source,
                    keys,
                    hint=f"set mode: {other}",
                )
        return super()._input_from(raw, source=source, keys=keys, what=what, **extra)
