"""A plugin datastore for tests: records live in a process-wide dict, not in files, so a
test can tell whether the runtime goes through the Datastore interface (``clear`` on
``--restart``, ``replace`` for final data) rather than touching the task folder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fms_dgt.datastores.base import Datastore

TABLES: dict[tuple[str, str], list[dict[str, Any]]] = {}


class MemoryDatastore(Datastore):
    def __init__(self, *, namespace: str = "default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = (f"{namespace}/{self.task_name}", self.store_name)

    def save_data(self, records: Sequence[dict[str, Any]]) -> None:
        TABLES.setdefault(self.key, []).extend(dict(r) for r in records)

    def load_data(self) -> Iterator[dict[str, Any]]:
        yield from list(TABLES.get(self.key, []))

    def replace(self, records: Iterable[dict[str, Any]]) -> int:
        TABLES[self.key] = [dict(r) for r in records]
        return len(TABLES[self.key])

    def exists(self) -> bool:
        return self.key in TABLES

    def clear(self) -> None:
        TABLES.pop(self.key, None)

    @property
    def location(self) -> str:
        return f"memory:{self.key[0]}"
