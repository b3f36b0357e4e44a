"""Pydantic schemas for the reserved sections of a task.yaml (``runner_config``,
``datastore``, ``seed_datastore``) and the conversion of their validation errors into
located ConfigErrors."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.errors import ConfigError
from fms_dgt.registry import did_you_mean

M = TypeVar("M", bound=BaseModel)

MANDATORY_TASK_FIELDS = ("task_name", "task_description", "created_by", "data_builder")
RESERVED_TASK_FIELDS = (
    "seed_examples",
    "seed_datastore",
    "data",
    "formatter",
    "runner_config",
    "datastore",
    "filters",
)


class RunnerConfig(BaseModel):
    """How a task is run. Every field can be overridden from the CLI or an override file."""

    model_config = ConfigDict(extra="forbid")

    num_outputs_to_generate: int = Field(default=10, ge=1)
    seed_batch_size: int = Field(default=3, ge=0, description="seed examples given to each builder call")
    machine_batch_size: int = Field(
        default=2, ge=0, description="accepted synthetic examples mixed into each call"
    )
    transform_batch_size: int = Field(default=8, ge=1, description="input rows per transformation call")
    max_concurrent_calls: int = Field(default=32, ge=1, description="builder calls in flight at once")
    save_formatted_output: bool = False
    max_stalled_attempts: int = Field(
        default=5,
        ge=1,
        description="windows of max_concurrent_calls calls with no accepted record before stopping",
    )
    max_epochs: int = Field(default=20, ge=1, description="generate/postprocess rounds before giving up")
    max_outage_seconds: float = Field(
        default=600.0,
        gt=0,
        description="how long every LLM request may keep failing (server down) before the task stops",
    )
    seed: int | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``true`` is not a count: YAML booleans only where a boolean is expected."""
        if isinstance(value, bool) and cls.model_fields[info.field_name].annotation is not bool:
            raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


class DatastoreConfig(BaseModel):
    """Where a task's outputs go. Plugin datastores take extra keys."""

    model_config = ConfigDict(extra="allow")

    type: str = "default"
    output_data_format: Literal["jsonl", "parquet"] = "jsonl"


class SeedDatastoreConfig(BaseModel):
    """Where seed (or transformation input) records come from (files only, so every other
    key is a typo: ``limt`` must not silently mean "no limit")."""

    model_config = ConfigDict(extra="forbid")

    type: str = "default"
    data_path: str | list[str]
    data_format: Literal["jsonl", "json", "yaml", "csv", "parquet"] | None = None
    limit: int | None = Field(default=None, ge=1)


def validate_section(model: type[M], data: Any, doc: YamlDoc, *key: Any) -> M:
    """Validate ``data`` (found at ``key`` in ``doc``) against ``model``; the first error
    becomes a ConfigError with the line of the offending field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise doc.error(f"expected a mapping, got {type(data).__name__}", *key)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field_key = (*key, *loc)
        if err["type"] == "extra_forbidden":
            options = list(model.model_fields)
            raise doc.error(
                f"unknown key '{loc[-1]}'",
                *field_key,
                hint=did_you_mean(str(loc[-1]), options) or f"accepted: {', '.join(options)}",
            ) from None
        if err["type"] == "missing":
            raise doc.error(f"missing required key '{loc[-1]}'", *field_key) from None
        if err["type"] == "value_error":  # our own validators say what they got
            raise doc.error(str(err["ctx"]["error"]), *field_key) from None
        given = err.get("input")
        raise doc.error(f"{err['msg'].lower()} (got {given!r})", *field_key) from None


def config_error_from(exc: Exception, doc: YamlDoc, *key: Any) -> ConfigError:
    if isinstance(exc, ConfigError):
        return exc.located(file=doc.path, line=doc.line_of(*key), field=".".join(map(str, key)) or None)
    return doc.error(str(exc), *key)
