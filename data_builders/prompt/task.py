"""The ``prompt`` builder's task: a Jinja prompt and output fields from the task.yaml, turned
into a record type, a JSON schema and a checked template."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any, Literal

import jinja2
import jinja2.meta
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fms_dgt import ConfigError, DataPoint, GenerationTask
from fms_dgt.engines.types import Constraint
from fms_dgt.registry import did_you_mean

_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


class OutputField(BaseModel):
    """One field of the output: its JSON type and constraints."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "integer", "number", "boolean", "list"] = "string"
    items: Literal["string", "integer", "number", "boolean"] = "string"
    description: str | None = None
    enum: list[Any] | None = Field(default=None, min_length=1)
    pattern: str | None = None
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    minimum: float | None = None
    maximum: float | None = None
    required: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> OutputField:
        if self.pattern and (self.min_length is not None or self.max_length is not None):
            raise ValueError(
                "give either 'pattern' or 'min_length'/'max_length' (vLLM's grammar backend cannot "
                "combine them on one string; put the length in the pattern, e.g. '^.{10,200}$')"
            )
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"'minimum' ({self.minimum}) is above 'maximum' ({self.maximum})")
        return self

    def schema(self) -> dict[str, Any]:
        if self.type == "list":
            out: dict[str, Any] = {"type": "array", "items": {"type": self.items}}
            if self.min_length is not None:
                out["minItems"] = self.min_length
            if self.max_length is not None:
                out["maxItems"] = self.max_length
        else:
            out = {"type": self.type}
            for key, value in (
                ("pattern", self.pattern),
                ("minLength", self.min_length),
                ("maxLength", self.max_length),
            ):
                if value is not None:
                    out[key] = value
            for key, value in (("minimum", self.minimum), ("maximum", self.maximum)):
                if value is not None:
                    out[key] = int(value) if self.type == "integer" else value
        if self.enum is not None:
            out["enum"] = self.enum
        if self.description:
            out["description"] = self.description
        return out

    def python_type(self) -> Any:
        return list[_TYPES[self.items]] if self.type == "list" else _TYPES[self.type]  # type: ignore[valid-type]


class PromptTask(GenerationTask):
    """Generation from a task.yaml ``prompt`` (Jinja), optional ``system`` message and
    ``output`` fields (without ``output``, each record is the answer's ``text``)."""

    def __init__(
        self,
        *,
        prompt: str,
        output: dict[str, OutputField] | None = None,
        system: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fields = dict(output or {})
        self.system = system
        names = list(self.fields) or ["text"]
        clash = [n for n in names if n in ("task_name", "is_seed", "id", "lineage")]
        if clash:
            raise self._config_error(
                f"output field '{clash[0]}' is reserved for every record", "output", clash[0]
            )
        record_fields = [
            (n, f.python_type(), dataclasses.field() if f.required else dataclasses.field(default=None))
            for n, f in self.fields.items()
        ] or [("text", str, dataclasses.field())]
        record = dataclasses.make_dataclass("PromptRecord", record_fields, bases=(DataPoint,), kw_only=True)
        self.INPUT_DATA_TYPE = self.OUTPUT_DATA_TYPE = record  # type: ignore[misc]
        self.constraint = (
            Constraint(
                json_schema={
                    "type": "object",
                    "properties": {n: f.schema() for n, f in self.fields.items()},
                    "required": [n for n, f in self.fields.items() if f.required],
                }
            )
            if self.fields
            else None
        )
        try:
            self.template = _ENV.from_string(prompt)
            self.system_template = _ENV.from_string(system) if system else None
        except jinja2.TemplateSyntaxError as exc:
            raise self._config_error(
                f"the prompt is not a valid Jinja template: {exc.message} (line {exc.lineno})", "prompt"
            ) from None
        self.template_hash = hashlib.sha1(f"{system or ''}\n{prompt}".encode()).hexdigest()[:12]
        self._check_variables(prompt, "prompt")
        if system:
            self._check_variables(system, "system")

    def _check_variables(self, source: str, key: str) -> None:
        provided = {
            "examples",
            "task_description",
            "samples",
            *(self.samplers.specs if self.samplers else {}),
        }
        unknown = sorted(jinja2.meta.find_undeclared_variables(_ENV.parse(source)) - provided)
        if unknown:
            name = unknown[0]
            raise self._config_error(
                f"the {key} template uses '{name}', which nothing provides",
                key,
                hint=did_you_mean(name, provided)
                or f"available: {', '.join(sorted(provided))} (add a sampler to provide more)",
            )

    def _config_error(self, message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        if self.yaml_doc is not None:
            return self.yaml_doc.error(message, *keys, hint=hint)
        return ConfigError(message, field=".".join(map(str, keys)), hint=hint)

    def render(self, examples: Sequence[Any], samples: dict[str, Any]) -> list[dict[str, Any]]:
        context = {
            **samples,
            "samples": samples,
            "examples": examples,
            "task_description": self.task_description,
        }
        messages = [{"role": "user", "content": self.template.render(**context)}]
        if self.system_template is not None:
            messages.insert(0, {"role": "system", "content": self.system_template.render(**context)})
        return messages
