"""Samplers: values drawn for each builder call and given to its prompt, so generated data
covers the space a user describes (topics, difficulties, dates, personas) instead of what a
model drifts to.

A task.yaml declares them by name under ``samplers:``::

    samplers:
      topic: {type: category, values: [physics, chemistry], weights: [2, 1]}
      subtopic:
        type: subcategory
        parent: topic
        values: {physics: [optics, mechanics], chemistry: [acids, bonds]}
      difficulty: {type: uniform, low: 1, high: 5}          # ints: 1..5 inclusive
      temperature_c: {type: uniform, low: -10.0, high: 35.0}  # floats
      asked_on: {type: datetime, start: 2020-01-01, end: 2024-12-31, format: "%Y-%m-%d"}
      person: {type: persona, path: personas.jsonl}          # a record from a jsonl/parquet file

The values drawn for call ``i`` depend only on the task's seed and ``i``: a resumed run
draws the same values for the same call, and the same seed gives the same data plan.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.errors import ConfigError, Problems


class _Spec(BaseModel):
    """A sampler's settings: every key known (the ``type`` picks the model)."""

    model_config = ConfigDict(extra="forbid")


def _check_weights(weights: list[float] | None, n: int) -> None:
    if weights is None:
        return
    if len(weights) != n:
        raise ValueError(f"'weights' has {len(weights)} entries for {n} values")
    if any(w < 0 for w in weights):
        raise ValueError("'weights' must not be negative")
    if not any(w > 0 for w in weights):
        raise ValueError("'weights' are all zero: nothing could be drawn")


class CategorySampler(_Spec):
    """One of ``values`` (with optional ``weights``)."""

    type: Literal["category"]
    values: list[Any] = Field(min_length=1)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _weights(self) -> CategorySampler:
        _check_weights(self.weights, len(self.values))
        return self

    def draw(self, rng: random.Random, drawn: dict[str, Any]) -> Any:
        return rng.choices(self.values, weights=self.weights)[0]


class SubcategorySampler(_Spec):
    """One of the values listed under the value drawn for ``parent``."""

    type: Literal["subcategory"]
    parent: str
    values: dict[str, list[Any]]
    weights: dict[str, list[float]] | None = None

    @model_validator(mode="after")
    def _shapes(self) -> SubcategorySampler:
        for key, options in self.values.items():
            if not options:
                raise ValueError(f"'values.{key}' is empty: nothing could be drawn under '{key}'")
            _check_weights((self.weights or {}).get(key), len(options))
        return self

    def draw(self, rng: random.Random, drawn: dict[str, Any]) -> Any:
        options = self.values[str(drawn[self.parent])]
        return rng.choices(options, weights=(self.weights or {}).get(str(drawn[self.parent])))[0]


class UniformSampler(_Spec):
    """A number between ``low`` and ``high``: an integer (both ends included) when both are
    integers, else a float rounded to ``decimals``."""

    type: Literal["uniform"]
    low: int | float
    high: int | float
    decimals: int = Field(default=2, ge=0)

    @field_validator("low", "high", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {str(value).lower()}")
        return value

    @model_validator(mode="after")
    def _order(self) -> UniformSampler:
        if self.low > self.high:
            raise ValueError(f"'low' ({self.low}) is above 'high' ({self.high})")
        return self

    def draw(self, rng: random.Random, drawn: dict[str, Any]) -> Any:
        if isinstance(self.low, int) and isinstance(self.high, int):
            return rng.randint(self.low, self.high)
        return round(rng.uniform(self.low, self.high), self.decimals)


class DatetimeSampler(_Spec):
    """A moment between ``start`` and ``end``, written with ``format`` (strftime)."""

    type: Literal["datetime"]
    start: dt.datetime
    end: dt.datetime
    format: str = "%Y-%m-%d"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return dt.datetime(value.year, value.month, value.day)  # YAML reads 2020-01-01 as a date
        return value

    @model_validator(mode="after")
    def _order(self) -> DatetimeSampler:
        if self.start > self.end:
            raise ValueError(f"'start' ({self.start:%Y-%m-%d}) is after 'end' ({self.end:%Y-%m-%d})")
        return self

    def draw(self, rng: random.Random, drawn: dict[str, Any]) -> Any:
        span = (self.end - self.start).total_seconds()
        return (self.start + dt.timedelta(seconds=rng.uniform(0, span))).strftime(self.format)


class PersonaSampler(_Spec):
    """A record (a person: name, occupation, traits...) from a jsonl or parquet file,
    relative to the task.yaml; ``fields`` keeps only those keys."""

    type: Literal["persona", "person"]
    path: str
    fields: list[str] | None = None

    def load(self, base_dir: Path) -> list[dict[str, Any]]:
        from fms_dgt.datastores.readers import expand_paths, read_located_records

        records: list[dict[str, Any]] = []
        for path in expand_paths(self.path, base_dir):
            for _, record in read_located_records(path):
                records.append({k: record.get(k) for k in self.fields} if self.fields else record)
        if not records:
            raise ConfigError(
                f"persona file '{self.path}' holds no records", hint="add records, or point path elsewhere"
            )
        return records


SamplerSpec = Annotated[
    CategorySampler | SubcategorySampler | UniformSampler | DatetimeSampler | PersonaSampler,
    Field(discriminator="type"),
]


class Samplers:
    """A task's samplers, checked and ready to draw."""

    def __init__(self, specs: dict[str, Any], base_dir: Path, doc: YamlDoc | None = None) -> None:
        self.specs = specs
        self.order = self._ordered(doc)
        self.personas: dict[str, list[dict[str, Any]]] = {}
        problems = Problems()
        for name, spec in specs.items():
            if isinstance(spec, PersonaSampler):
                with problems.check():
                    try:
                        self.personas[name] = spec.load(base_dir)
                    except ConfigError as err:
                        raise _at(err, doc, name, "path") from None
        problems.raise_if_any()

    def _ordered(self, doc: YamlDoc | None) -> list[str]:
        """Parents before children; an unknown or circular parent is a located error."""
        problems = Problems()
        for name, spec in self.specs.items():
            if isinstance(spec, SubcategorySampler):
                parent = self.specs.get(spec.parent)
                if parent is None:
                    known = ", ".join(n for n in self.specs if n != name) or "none"
                    problems.add(
                        _error(
                            doc,
                            f"'{name}' depends on '{spec.parent}', which is no sampler (samplers: {known})",
                            name,
                            "parent",
                        )
                    )
                elif isinstance(parent, (CategorySampler, SubcategorySampler)):
                    missing = [str(v) for v in _possible(parent, self.specs) if str(v) not in spec.values]
                    if missing:
                        problems.add(
                            _error(
                                doc,
                                f"'{name}' lists no values for {', '.join(repr(m) for m in missing)} of '{spec.parent}'",
                                name,
                                "values",
                            )
                        )
                else:
                    problems.add(
                        _error(
                            doc,
                            f"'{name}' depends on '{spec.parent}', which is not a category",
                            name,
                            "parent",
                        )
                    )
        problems.raise_if_any()
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order:
                return
            if name in visiting:
                raise _error(doc, f"samplers '{name}' and its parents depend on each other", name, "parent")
            visiting.add(name)
            spec = self.specs[name]
            if isinstance(spec, SubcategorySampler):
                visit(spec.parent)
            visiting.discard(name)
            order.append(name)

        for name in self.specs:
            visit(name)
        return order

    def draw(self, seed: int | None, index: int) -> dict[str, Any]:
        """The values for builder call ``index`` (the same for the same seed and index)."""
        rng = random.Random(f"{seed}:{index}")
        drawn: dict[str, Any] = {}
        for name in self.order:
            spec = self.specs[name]
            if isinstance(spec, PersonaSampler):
                drawn[name] = dict(rng.choice(self.personas[name]))
            else:
                drawn[name] = spec.draw(rng, drawn)
        return drawn


def _possible(spec: Any, specs: dict[str, Any]) -> list[Any]:
    if isinstance(spec, CategorySampler):
        return list(spec.values)
    return [v for options in spec.values.values() for v in options]


def _error(doc: YamlDoc | None, message: str, *keys: Any) -> ConfigError:
    if doc is not None:
        return doc.error(message, "samplers", *keys)
    return ConfigError(message, field=".".join(("samplers", *map(str, keys))))


def _at(err: ConfigError, doc: YamlDoc | None, *keys: Any) -> ConfigError:
    if doc is None:
        return err.located(field=".".join(("samplers", *map(str, keys))))
    return doc.sub_error(err, "samplers", *keys)
