"""``as_dict`` (the record → dict conversion on the write path) matches ``dataclasses.asdict``."""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from fms_dgt.datapoint import DataPoint, as_dict


@dataclass
class Inner:
    a: int
    b: list[Any]


Point = collections.namedtuple("Point", "x y")


@dataclass(kw_only=True)
class Rich(DataPoint):
    q: str
    n: float = 1.5
    inner: Inner | None = None
    t: tuple[Any, ...] = ()
    nt: Point | None = None
    tags: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)


def make() -> Rich:
    return Rich(
        q="why?",
        inner=Inner(1, [Inner(2, [])]),
        t=(1, [2, {"a": Inner(3, [4])}]),
        nt=Point(1, Inner(5, [])),
        tags={"x", "y"},
        lineage={"icl_ids": ["a", "b"], "tokens": {"prompt": 1}},
    )


def test_same_result_as_dataclasses_asdict() -> None:
    record = make()
    got = as_dict(record)
    assert got == dataclasses.asdict(record)
    assert type(got["nt"]) is Point and got["inner"] == {"a": 1, "b": [{"a": 2, "b": []}]}


def test_containers_are_copied_not_shared() -> None:
    record = make()
    got = as_dict(record)
    got["lineage"]["icl_ids"].append("c")
    got["tags"].add("z")
    assert record.lineage["icl_ids"] == ["a", "b"] and record.tags == {"x", "y"}


def test_defaultdict_keeps_its_factory_and_dicts_pass_through() -> None:
    record = make()
    record.extra = collections.defaultdict(list, {"k": [Inner(6, [])]})
    extra = as_dict(record)["extra"]
    assert isinstance(extra, collections.defaultdict) and extra.default_factory is list
    assert extra == {"k": [{"a": 6, "b": []}]}
    plain = {"q": 1}
    assert as_dict(plain) is plain
