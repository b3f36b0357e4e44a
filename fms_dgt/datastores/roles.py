"""A task's stores, by role: the one place that knows which store holds what and in which
format.

Roles, and the file names the default datastore gives them under
``<output_dir>/<task_name>/``:

=================  =====================  ==========================================
role               store name             holds
=================  =====================  ==========================================
``data``           data                   every accepted record, in acceptance order
``postproc(n)``    postproc_data_<n>      the output of postprocessing step n
``final``          final_data             the task's result
``formatted``      formatted_data         ``final`` through the task's formatter
``split(b, s)``    <b>_<s>                split ``s`` (train, validation, test) of
                                          ``final_data`` / ``formatted_data``
``rejected``       rejected               rejected records with block and reason
``failed``         failed                 requests and builder calls that failed
``progress``       transform_progress     a transformation's finished chunks
=================  =====================  ==========================================

The record stores (data, postproc, final, formatted) follow the task's
``datastore.output_data_format`` (jsonl or parquet); the run's own bookkeeping (rejected,
failed, progress) is always jsonl: it is appended to one line at a time and read back by
the framework, not by training tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fms_dgt.datastores.base import Datastore
from fms_dgt.registry import datastores

DATA, FINAL, FORMATTED = "data", "final_data", "formatted_data"
REJECTED, FAILED, PROGRESS = "rejected", "failed", "transform_progress"
RECORD_STORES = (DATA, FINAL, FORMATTED)  # in the task's output format (so are the splits)
LOG_STORES = (REJECTED, FAILED, PROGRESS)  # always jsonl


SPLIT_NAMES = ("train", "validation", "test")  # fms_dgt.export.splits.SPLITS


def postproc_name(step: int) -> str:
    return f"postproc_data_{step}"


def split_name(base: str, split: str) -> str:
    """The store holding split ``split`` of ``base`` (``final_data_train``...)."""
    return f"{base}_{split}"


SPLIT_STORES = tuple(split_name(b, s) for b in (FINAL, FORMATTED) for s in SPLIT_NAMES)


class TaskStores:
    """Opens (lazily) and holds every store of one task."""

    def __init__(self, *, output_dir: Path, task_name: str, config: dict[str, Any] | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.task_name = task_name
        self.config = dict(config or {"type": "default"})
        self._open: dict[str, Datastore] = {}

    def get(self, store_name: str) -> Datastore:
        store = self._open.get(store_name)
        if store is None:
            cfg = dict(self.config)
            kind = cfg.pop("type", "default")
            if store_name in LOG_STORES:
                cfg["output_data_format"] = "jsonl"
            store = datastores.get(kind)(
                store_name=store_name, output_dir=self.output_dir, task_name=self.task_name, **cfg
            )
            self._open[store_name] = store
        return store

    @property
    def data(self) -> Datastore:
        return self.get(DATA)

    @property
    def final(self) -> Datastore:
        return self.get(FINAL)

    @property
    def formatted(self) -> Datastore:
        return self.get(FORMATTED)

    @property
    def rejected(self) -> Datastore:
        return self.get(REJECTED)

    @property
    def failed(self) -> Datastore:
        return self.get(FAILED)

    @property
    def progress(self) -> Datastore:
        return self.get(PROGRESS)

    def postproc(self, step: int) -> Datastore:
        return self.get(postproc_name(step))

    def split(self, base: str, split: str) -> Datastore:
        return self.get(split_name(base, split))

    def clear(self, postprocessing_steps: int) -> None:
        """Empty every store (for ``--restart``) through the store's own ``clear``, so a plugin
        store (a database, an object store) is emptied too, not just files in the folder."""
        names = [
            *RECORD_STORES,
            *SPLIT_STORES,
            *LOG_STORES,
            *(postproc_name(i) for i in range(1, postprocessing_steps + 1)),
        ]
        for name in names:
            self.get(name).clear()

    def close(self) -> None:
        for store in self._open.values():
            store.close()
