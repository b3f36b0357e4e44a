"""Task of the ``inference`` builder: plain model inference over a dataset column.

Columns vary from dataset to dataset, so the record types are made per task: the input
type requires the columns the prompt needs (``input_field``, or the variables of
``prompt_template``) and keeps every column of the row in ``row``; the output type is
``row`` (the input row, whole), the answer under ``output_field`` and ``model_name``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import keyword
from typing import Any, Literal

import jinja2
import jinja2.meta

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.datapoint import BASE_FIELDS
from fms_dgt.engines.types import SamplingOptions

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
# fields of every output record besides the answer: an answer or input field cannot use them
RESERVED = (*BASE_FIELDS, "row", "model_name")


def _identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


class InferenceTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``input_field``: the column holding the prompt (default ``text``; a differently named
      column can also be mapped with ``data: {columns: {text: <column>}}``).
    - ``prompt_template``: a Jinja template over the row's columns instead (``{{ question }}``,
      or ``{{ row['odd name'] }}`` for any column); the columns it names are required.
    - ``output_field``: the output record's field holding the answer (default ``output``).
    - ``system_prompt``: a system message for every request (chat mode).
    - ``mode``: ``chat`` (the prompt is a user message; default) or ``completion`` (a raw
      prompt, for base models).
    - ``sampling``: sampling for this task, on top of the builder's (max_tokens, temperature,
      top_p, stop, n, seed); with ``n`` > 1 every row gets n records.
    """

    def __init__(
        self,
        *,
        input_field: str | None = None,
        output_field: str = "output",
        prompt_template: str | None = None,
        system_prompt: str | None = None,
        mode: Literal["chat", "completion"] = "chat",
        sampling: SamplingOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if input_field is not None and prompt_template is not None:
            raise self.config_error(
                "give either input_field (the prompt is that column) or prompt_template (the prompt "
                "is made from the columns the template names), not both",
                "input_field",
            )
        if prompt_template is not None:
            self.template, self.columns = self._template(prompt_template)
        else:
            self.template = None
            self.columns = [self._field(input_field or "text", "input_field")]
        self.output_field = self._field(output_field, "output_field")
        if system_prompt is not None and mode == "completion":
            raise self.config_error(
                "system_prompt needs mode: chat (a completion prompt has no system message)",
                "system_prompt",
                hint="put the instructions in prompt_template instead",
            )
        self.input_field = input_field or ("text" if prompt_template is None else None)
        self.system_prompt = system_prompt
        self.mode = mode
        self.sampling = dict(sampling or {})
        self.template_hash = hashlib.sha1(
            f"{mode}\n{system_prompt or ''}\n{prompt_template or '{{ ' + self.columns[0] + ' }}'}".encode()
        ).hexdigest()[:12]
        required = [(c, Any, dataclasses.field()) for c in self.columns]
        self.INPUT_DATA_TYPE = dataclasses.make_dataclass(  # type: ignore[misc]
            "InferenceRow",
            [*required, ("row", dict[str, Any], dataclasses.field(default_factory=dict))],
            bases=(DataPoint,),
            kw_only=True,
        )
        self.OUTPUT_DATA_TYPE = dataclasses.make_dataclass(  # type: ignore[misc]
            "InferenceRecord",
            [
                ("row", dict[str, Any], dataclasses.field(default_factory=dict)),
                (self.output_field, str, dataclasses.field(default="")),
                ("model_name", str | None, dataclasses.field(default=None)),
            ],
            bases=(DataPoint,),
            kw_only=True,
        )

    # ---- checking the keys ----------------------------------------------------------------
    def _field(self, name: str, key: str) -> str:
        if not _identifier(name):
            raise self.config_error(
                f"{key} '{name}' is not a usable field name (letters, digits and _, not starting with a digit)",
                key,
                hint="map the column to a plain name with data: {columns: {text: '<column>'}}"
                if key == "input_field"
                else "name it like a Python variable, e.g. answer",
            )
        if name in RESERVED:
            raise self.config_error(
                f"{key} '{name}' is reserved for every record ({', '.join(RESERVED)})",
                key,
                hint="map the column to another name with data: {columns: {text: '<column>'}}"
                if key == "input_field"
                else "choose another name, e.g. answer",
            )
        return name

    def _template(self, source: str) -> tuple[jinja2.Template, list[str]]:
        try:
            template = _ENV.from_string(source)
            names = sorted(jinja2.meta.find_undeclared_variables(_ENV.parse(source)) - {"row"})
        except jinja2.TemplateSyntaxError as exc:
            raise self.config_error(
                f"prompt_template is not a valid Jinja template: {exc.message} (line {exc.lineno})",
                "prompt_template",
            ) from None
        for name in names:
            if name in BASE_FIELDS:
                raise self.config_error(
                    f"prompt_template uses '{name}', a name every record has for itself",
                    "prompt_template",
                    hint=f"read the column as {{{{ row['{name}'] }}}}",
                )
        if not names and "row" not in jinja2.meta.find_undeclared_variables(_ENV.parse(source)):
            raise self.config_error(
                "prompt_template uses no column: every row would get the same prompt",
                "prompt_template",
                hint="name a column, e.g. {{ text }}",
            )
        return template, names

    # ---- rows -----------------------------------------------------------------------------
    def instantiate_input_example(self, **kwargs: Any) -> DataPoint:
        """The row's prompt columns as fields (a missing one is a TypeError the loader
        reports with the row's columns) and every column in ``row``."""
        task_name = kwargs.pop("task_name", self.task_name)
        kwargs.pop("is_seed", None)
        fields = {c: kwargs[c] for c in self.columns if c in kwargs}
        return self.INPUT_DATA_TYPE(task_name=task_name, row=dict(kwargs), **fields)

    def _note_unknown_keys(self, raw: dict[str, Any], source: Any, keys: Any, what: str) -> None:
        """Every column is kept (in ``row``): none is ignored, so there is nothing to warn of."""

    def render(self, row: DataPoint) -> str:
        """The prompt of ``row``."""
        values: dict[str, Any] = row.row  # type: ignore[attr-defined]
        if self.template is None:
            return str(values[self.columns[0]])
        context = {k: v for k, v in values.items() if isinstance(k, str) and _identifier(k)}
        return self.template.render(**context, row=values)
