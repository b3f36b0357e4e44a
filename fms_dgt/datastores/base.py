"""The datastore contract: an append-only stream of record dicts with atomic rewrite.

A task owns several stores (``data``, ``final_data``, ``rejected``, ``failed``, ...); each is
one Datastore instance, opened by role through ``fms_dgt.datastores.roles.TaskStores``. ``save_data`` must make records durable against a process crash
before returning (write + flush; ``sync`` adds fsync), because the runtime counts a record
as accepted only after that. ``replace`` swaps the whole content atomically, which is how
postprocessed and final results are written without ever exposing a half-written file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fms_dgt.errors import DatastoreError, DiskFullError


class Datastore(ABC):
    """One named stream of records belonging to one task."""

    def __init__(
        self,
        *,
        store_name: str,
        output_dir: str | Path,
        task_name: str,
        output_data_format: str = "jsonl",
        **unused: Any,
    ) -> None:
        if unused:
            raise TypeError(f"unexpected datastore arguments: {', '.join(sorted(unused))}")
        self.store_name = store_name
        self.output_dir = Path(output_dir)
        self.task_name = task_name
        self.output_data_format = output_data_format

    @abstractmethod
    def save_data(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records durably (flushed to the OS before returning)."""

    @abstractmethod
    def load_data(self) -> Iterator[dict[str, Any]]:
        """Stream all records in write order. A torn last record is skipped with a warning."""

    @abstractmethod
    def replace(self, records: Iterable[dict[str, Any]]) -> int:
        """Atomically replace the whole content; returns the number of records written."""

    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def clear(self) -> None: ...

    def count(self) -> int:
        return sum(1 for _ in self.load_data())

    def sync(self) -> None:
        """Make appended records durable against power loss (fsync). Called at batch
        boundaries, not per record."""

    def close(self) -> None:
        """Flush and release file handles."""

    @property
    def location(self) -> str:
        return str(self.output_dir)


@contextlib.contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Turn an OS error while writing ``path`` into a DatastoreError naming the file (a
    DiskFullError when the disk or the quota is full), instead of a traceback."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(path) from exc
        raise DatastoreError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` via a temp file + fsync + rename, so readers see the
    old or the new document, never a torn one."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(obj, fh, indent=2, ensure_ascii=False, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
