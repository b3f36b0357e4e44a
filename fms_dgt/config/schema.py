"""The three files a user writes, as pydantic models: a task.yaml (``TaskFile``), a builder
YAML (``BuilderFile``) and an override file (``OverrideFile``), with the sections they share.

These models are the only list of what each file may hold: the loader, the index and the
factory read field names from here instead of keeping lists of their own. Validation
errors become located messages in ``fms_dgt.config.messages`` (every error of a file at
once, with did-you-mean hints).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from fms_dgt.builders.samplers import SamplerSpec
from fms_dgt.config.strict import Strict


class SplitConfig(Strict):
    """A seeded train/validation/test split of the task's final records (and of its
    formatted records, which follow their source record), written as separate files; drawn
    by record id so it stays put when the run is resumed or extended (fms_dgt/export/splits.py)."""

    train: float = Field(gt=0, le=1)
    validation: float = Field(default=0.0, ge=0, le=1)
    test: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + validation + test must sum to 1, they sum to {total:g} "
                f"({self.train:g} + {self.validation:g} + {self.test:g})"
            )
        return self

    def ratios(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


class RunnerConfig(Strict):
    """How a task is run. Every field can be overridden from the CLI or an override file."""

    num_outputs_to_generate: int = Field(default=10, ge=1)
    seed_batch_size: int = Field(default=3, ge=0, description="seed examples given to each builder call")
    machine_batch_size: int = Field(
        default=2, ge=0, description="accepted synthetic examples mixed into each call"
    )
    transform_batch_size: int = Field(default=8, ge=1, description="input rows per transformation call")
    max_input_rows: int | None = Field(
        default=None, ge=1, description="a transformation processes only the first N input rows (None: all)"
    )
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
    # budgets: the task stops (budget_exhausted / time_limit) when one is spent, over all its
    # runs; the same command with a raised limit continues (fms_dgt/budget.py)
    max_cost_usd: float | None = Field(default=None, gt=0, description="US dollars the task may spend")
    max_tokens_total: int | None = Field(
        default=None,
        gt=0,
        description="prompt + completion tokens the task may use (cached answers are free)",
    )
    max_seconds: float | None = Field(default=None, gt=0, description="seconds the task may run")
    split: SplitConfig | None = Field(
        default=None, description="train/validation/test shares of the final records, and their seed"
    )


class DatastoreConfig(BaseModel):
    """Where a task's outputs go. A plugin datastore takes extra keys (its constructor's
    arguments, checked against its signature when the task loads)."""

    model_config = ConfigDict(extra="allow")

    type: str = "default"
    output_data_format: Literal["jsonl", "parquet"] = "jsonl"


class DataSourceConfig(Strict):
    """Where seed records (``seed_datastore``) or transformation input rows (``data``) come
    from: files, globs or folders."""

    type: str = "default"
    data_path: str | list[str]
    data_format: Literal["jsonl", "json", "yaml", "csv", "parquet", "datasets"] | None = None
    limit: int | None = Field(default=None, ge=1)
    # record field -> the column of the data that holds it (``{question: prompt}``), for data
    # whose columns are named otherwise than the builder's input fields
    columns: dict[str, str] | None = None


def _data_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "records"
    if isinstance(value, dict):
        return "source"
    return None


# ``data:`` is either inline rows or a data source; the tag picks the model, so an error
# names what is wrong in the form the user chose instead of listing both alternatives
InputData = Annotated[
    Annotated[list[dict[str, Any]], Tag("records")] | Annotated[DataSourceConfig, Tag("source")],
    Discriminator(
        _data_kind,
        custom_error_type="data_shape",
        custom_error_message="'data' must be a list of records or a mapping such as {data_path: rows.jsonl}",
    ),
]
UNION_TAGS = frozenset({"records", "source"})

# a component: {type: <registered name>, ...} or {class_path: module:Class, init_args: {...}}
ComponentSpec = dict[str, Any]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_task_name(name: str) -> str:
    """A task name is a ``/``-separated path naming its output folder (the format's own
    convention: ``core/simple/logical_reasoning/causal``). Each segment must be a plain
    folder name, so the folder stays inside the output dir whatever the name says."""
    if not name.strip():
        raise ValueError("must be a non-empty string")
    problem = None
    if _CONTROL.search(name):
        problem = "contains a control character"
    elif "\\" in name or PureWindowsPath(name).drive:
        problem = "contains a backslash or a drive (use '/' between segments)"
    elif PurePosixPath(name).is_absolute():
        problem = "is an absolute path"
    else:
        for segment in name.split("/"):
            if segment in ("", ".", ".."):
                shown = "an empty segment" if not segment else f"a '{segment}' segment"
                problem = f"has {shown}"
                break
            if segment != segment.strip():
                problem = f"has a segment with leading or trailing spaces ('{segment}')"
                break
    if problem:
        raise ValueError(
            f"task_name {name!r} {problem}; it names the output folder, so each '/'-separated "
            "segment must be a plain folder name"
        )
    return name


class TaskIdentity(BaseModel):
    """The four mandatory keys of a task.yaml: what the index reads of every task file."""

    model_config = ConfigDict(extra="allow")

    task_name: str
    task_description: str
    created_by: str
    data_builder: str

    @field_validator("task_description", "created_by", "data_builder", mode="before")
    @classmethod
    def _non_empty(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"must be a non-empty string (got {value!r})")
        return value

    @field_validator("task_name", mode="before")
    @classmethod
    def _safe_name(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"must be a non-empty string (got {value!r})")
        return check_task_name(value)


class TaskFile(TaskIdentity):
    """A task.yaml. The identity keys are mandatory; the reserved sections are typed here;
    every other key is an argument of the task class's constructor (checked against its
    signature by ``fms_dgt.config.components``)."""

    seed_examples: list[dict[str, Any]] | None = None
    seed_datastore: DataSourceConfig | None = None
    data: InputData | None = None
    formatter: ComponentSpec | None = None
    filters: list[ComponentSpec] | None = None
    runner_config: RunnerConfig = Field(default_factory=RunnerConfig)
    datastore: DatastoreConfig = Field(default_factory=DatastoreConfig)
    samplers: dict[str, SamplerSpec] | None = None

    @classmethod
    def reserved(cls) -> frozenset[str]:
        """The sections the runtime handles (the rest are task-class arguments)."""
        return frozenset(n for n, f in cls.model_fields.items() if not f.is_required())

    def given(self) -> dict[str, Any]:
        """The reserved sections the file sets, as checked objects."""
        return {n: getattr(self, n) for n in self.model_fields_set if n in self.reserved()}

    def extras(self) -> dict[str, Any]:
        """The keys that are arguments of the task class."""
        return dict(self.model_extra or {})


class BuilderFile(Strict):
    """A builder YAML, next to its ``generate.py``."""

    name: str | None = None
    # other names task files may use for this builder (e.g. IBM fms-dgt's, for its users' files)
    aliases: list[str] = Field(default_factory=list)
    # names that mean this builder when the task file has ``data:`` (IBM fms-dgt's ``magpie``
    # is a transformation of existing rows; ours of that name generates)
    data_aliases: list[str] = Field(default_factory=list)
    description: str = ""
    blocks: list[ComponentSpec] = Field(default_factory=list)
    postprocessors: list[ComponentSpec] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class OverrideFile(Strict):
    """The ``--config-path`` file: one place to retarget every task.

    ``engines`` replaces every engine block of every builder; ``runner_config`` applies to
    every task; ``builders.<name>`` is merged into that builder's YAML and ``tasks.<name>``
    (or ``tasks."*"``) into the task.yaml, lists of named blocks merged by name."""

    engines: ComponentSpec | None = None
    runner_config: dict[str, Any] | None = None
    builders: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("engines")
    @classmethod
    def _engine_kind(cls, value: Any) -> Any:
        if value is not None and "type" not in value and "class_path" not in value:
            raise ValueError("'engines' must be a mapping with 'type' (or 'class_path')")
        return value
