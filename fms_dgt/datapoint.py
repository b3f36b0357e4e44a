"""Records. A ``DataPoint`` is the dataclass every task's input and output types extend; it
carries the task name, whether it is a seed, a stable id and the lineage of how it was made."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# the fields every record has; the rest are the user's (what is shown, compared and deduplicated)
BASE_FIELDS = ("task_name", "is_seed", "id", "lineage")


@dataclass(kw_only=True)
class DataPoint:
    """Base record. Subclasses add the user's fields as ordinary dataclass fields.

    ``id`` defaults to a hash of the task name and user fields, so the same content gets the
    same id in every run (resume and dedup rely on that). ``lineage`` says where a generated
    record came from: builder, model, prompt template hash, in-context example ids, tokens.
    """

    task_name: str = ""
    is_seed: bool = False
    id: str = ""
    lineage: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = content_id(self.task_name, self.user_fields())

    def user_fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in BASE_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def required_fields(cls) -> list[str]:
        return [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.init
        ]


def content_id(task_name: str, fields: dict[str, Any]) -> str:
    blob = json.dumps([task_name, fields], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def user_items(record: Any) -> dict[str, Any]:
    """The user's fields of a record (a DataPoint or a dict), without the base fields."""
    return {k: v for k, v in as_dict(record).items() if k not in BASE_FIELDS}


def get_field(record: Any, name: str) -> Any:
    """Read ``name`` (dotted for nesting) from a dataclass record or a dict; None if absent."""
    value = record
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if value is None:
            return None
    return value


def as_dict(record: Any) -> dict[str, Any]:
    """A plain dict view of a DataPoint or dict record.

    Same result as ``dataclasses.asdict`` (nested dataclasses become dicts, containers are
    copied), but it runs twice per accepted record, and ``asdict`` deep-copies every leaf
    through ``copy.deepcopy``: ~30% of the framework's CPU per record against a fast server.
    Strings, numbers and None are immutable, so they are shared instead of copied."""
    if isinstance(record, dict):
        return record
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return _dataclass_dict(record)
    raise TypeError(f"cannot turn {type(record).__name__} into a record dict")


_ATOMS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _dataclass_dict(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(obj))
    return {name: _plain(getattr(obj, name)) for name in names}


def _plain(value: Any) -> Any:
    """``dataclasses.asdict``'s treatment of one value, with fast paths for common types."""
    cls = type(value)
    if cls in _ATOMS:
        return value
    if cls is list:
        return [_plain(v) for v in value]
    if cls is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dataclass_dict(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return cls(*[_plain(v) for v in value])
    if isinstance(value, (list, tuple)):
        return cls(_plain(v) for v in value)
    if isinstance(value, dict):
        factory = getattr(value, "default_factory", None)
        if hasattr(cls, "default_factory"):  # defaultdict takes its factory first
            out = cls(factory)
            out.update((_plain(k), _plain(v)) for k, v in value.items())
            return out
        return cls((_plain(k), _plain(v)) for k, v in value.items())
    return copy.deepcopy(value)
