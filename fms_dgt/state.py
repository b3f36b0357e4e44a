"""Run state that cannot be derived from the data files (phase, epoch, RNG state, request
counter) and the per-task lock.

State is written atomically (temp + fsync + rename). The lock is an ``flock`` on a file in
the task directory: the kernel releases it when the process dies, so a SIGKILLed run never
leaves a stale lock, while a second live run of the same task is refused."""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fms_dgt.datastores.base import read_json, write_json_atomic
from fms_dgt.errors import TaskLockedError

log = logging.getLogger("fms_dgt.run")
STATE_FILE = "state.json"


@dataclass
class TaskState:
    status: str = "new"  # new | generating | postprocessed | complete | stalled | failed
    epoch: int = 0
    next_request_idx: int = 0
    rng_state: Any = None
    # generation: how many raw data records the last postprocessing pass covered, and kept
    postprocessed_upto: int = 0
    postprocessed_kept: int = 0
    final_count: int = 0
    formatted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, task_dir: Path) -> TaskState:
        data = read_json(task_dir / STATE_FILE)
        if not data:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if isinstance(known.get("rng_state"), list):
            known["rng_state"] = _tuplify(known["rng_state"])
        return cls(**known)

    def save(self, task_dir: Path) -> None:
        write_json_atomic(task_dir / STATE_FILE, asdict(self))


def load_state(task_dir: Path) -> TaskState:
    """The task's state; a damaged ``state.json`` (cut short, edited by hand) is set aside
    and the state rebuilt from the stores, which hold everything that matters: the next run
    re-reads ``data``, redoes postprocessing over all of it and rewrites ``final_data``.
    (What is lost is the in-context sampler's random state: prompts differ from an
    uninterrupted run, the records' count and integrity do not.)"""
    path = task_dir / STATE_FILE
    try:
        return TaskState.load(task_dir)
    except (ValueError, TypeError) as exc:
        damaged = path.with_name(STATE_FILE + ".damaged")
        os.replace(path, damaged)
        log.warning(
            "%s is damaged (%s); rebuilding the task's progress from its stores (the damaged "
            "file is kept as %s; --restart starts the task over instead)",
            path,
            exc,
            damaged.name,
        )
        return TaskState()


def _tuplify(value: Any) -> Any:
    return tuple(_tuplify(v) for v in value) if isinstance(value, list) else value


class TaskLock:
    """Exclusive lock on ``<task_dir>/.lock`` held for the duration of a run."""

    def __init__(self, task_dir: Path, task_name: str) -> None:
        self.path = task_dir / ".lock"
        self.task_name = task_name
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise TaskLockedError(
                f"task '{self.task_name}' is already being run by pid {holder} (lock {self.path}); "
                "wait for it to finish or stop it first"
            ) from None
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError:
            self.release()
            raise

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
