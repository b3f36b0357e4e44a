"""The durable record of Batch API jobs: which requests went into which job.

A batch job is paid for when it is created, and it runs whether or not the process that
created it is still alive. A run killed with SIGKILL and started again must therefore find
its jobs and wait for them instead of submitting the same requests again. The journal is an
append-only JSONL file, one event per line:

``intent``    ``{group, endpoint, at, items: [[custom_id, key], ...]}`` written (and fsynced)
              *before* the job is created: a crash between creating the job and learning
              its id leaves an intent, and the job carries the group id in its metadata, so
              the next run finds it by listing the jobs (``api.BatchAPI.find``).
``created``   ``{group, batch}`` the job id, fsynced.
``abandoned`` ``{group}`` the job was never created: its items are not waiting anywhere.
``settled``   ``{ids: [...]}`` items whose answer was handed to a caller, or that failed and
              were (or will be) resubmitted in a job of their own: nothing more to wait for.

An item's ``key`` is the content hash of its endpoint and body. A request that finds an
unsettled item with its key (from an earlier run) waits for that item instead of submitting
(``claim``); identical requests claim distinct items, one each. Reading the file rebuilds
that index; a torn last line (the crash) is dropped. When most lines are dead the file is
rewritten (temp file + rename) with only what is still open. One process at a time uses a
journal (an ``flock`` on a lock file beside it).
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fms_dgt.errors import FatalEngineError

log = logging.getLogger("fms_dgt.engines.batch")

_COMPACT_AFTER_LINES = 2000


@dataclass
class Group:
    """One job as the journal knows it."""

    group: str
    endpoint: str
    at: float  # Unix time of the intent
    items: dict[str, str]  # custom_id -> key
    batch: str | None = None


@dataclass
class _State:
    groups: dict[str, Group] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)
    lines: int = 0


class BatchJournal:
    """An open journal (see the module docstring). ``open`` reads it and takes its lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.groups: dict[str, Group] = {}
        self._open: collections.defaultdict[str, collections.deque[tuple[str, str]]] = (
            collections.defaultdict(collections.deque)
        )  # key -> unsettled (group, custom_id) from earlier runs, not yet claimed
        self._file: Any = None
        self._lock_fd: int | None = None

    @classmethod
    def open(cls, path: Path) -> BatchJournal:
        journal = cls(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        journal._lock()
        state = journal._read()
        journal.groups = {g: grp for g, grp in state.groups.items() if _unsettled(grp, state.settled)}
        for grp in journal.groups.values():
            for cid, key in grp.items.items():
                if cid not in state.settled:
                    journal._open[key].append((grp.group, cid))
        if state.lines > _COMPACT_AFTER_LINES:
            journal._rewrite(state.settled)
        journal._file = open(path, "ab")  # noqa: SIM115 - kept open for appends until close
        return journal

    # ---- reading ----------------------------------------------------------------------
    def claim(self, key: str) -> tuple[Group, str] | None:
        """An unsettled item of an earlier run with this key, now this caller's (or None)."""
        waiting = self._open.get(key)
        while waiting:
            gid, cid = waiting.popleft()
            grp = self.groups.get(gid)
            if grp is not None:
                return grp, cid
        return None

    def unclaim(self, key: str, group: Group, custom_id: str) -> None:
        """Put an item back for the next request with its key (its caller went away)."""
        self._open[key].appendleft((group.group, custom_id))

    def unresolved(self) -> list[Group]:
        """Groups from earlier runs whose job id was never written (a crash while creating)."""
        return [g for g in self.groups.values() if g.batch is None]

    # ---- writing ----------------------------------------------------------------------
    def intent(self, group: Group) -> None:
        self.groups[group.group] = group
        items = [[cid, key] for cid, key in group.items.items()]
        self._write(
            {
                "op": "intent",
                "group": group.group,
                "endpoint": group.endpoint,
                "at": group.at,
                "items": items,
            },
            sync=True,
        )

    def created(self, group: Group, batch: str) -> None:
        group.batch = batch
        self._write({"op": "created", "group": group.group, "batch": batch}, sync=True)

    def abandoned(self, group: Group) -> None:
        self.groups.pop(group.group, None)
        for cid, key in group.items.items():
            waiting = self._open.get(key)
            if waiting and (group.group, cid) in waiting:
                waiting.remove((group.group, cid))
        self._write({"op": "abandoned", "group": group.group}, sync=True)

    def settled(self, group: Group, custom_ids: list[str]) -> None:
        """Nothing more to wait for from these items of ``group`` (handed over, or failed)."""
        if not custom_ids:
            return
        for cid in custom_ids:
            waiting = self._open.get(group.items.get(cid, ""))
            if waiting and (group.group, cid) in waiting:
                waiting.remove((group.group, cid))
        self._write({"op": "settled", "ids": custom_ids}, sync=False)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # ---- internals --------------------------------------------------------------------
    def _write(self, event: dict[str, Any], *, sync: bool) -> None:
        if self._file is None:
            raise FatalEngineError(f"the batch journal {self.path} is closed")
        self._file.write(orjson.dumps(event) + b"\n")
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def _lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise FatalEngineError(
                f"the batch journal {self.path} is in use by another process (two runs of one task "
                "with the Batch API, or a shared state_dir)"
            ) from None
        self._lock_fd = fd

    def _read(self) -> _State:
        state = _State()
        if not self.path.exists():
            return state
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                last = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
                log.warning("%s: %s line %d dropped", self.path, "torn last" if last else "damaged", number)
                continue
            state.lines += 1
            _apply(state, event)
        if raw and not raw.endswith(b"\n"):  # a torn last line: appends start on a fresh one
            with open(self.path, "ab") as f:
                f.write(b"\n")
        return state

    def _rewrite(self, settled: set[str]) -> None:
        """Only what is still open, atomically (temp file, fsync, rename, fsync the folder)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            for grp in self.groups.values():
                items = [[cid, key] for cid, key in grp.items.items() if cid not in settled]
                event = {
                    "op": "intent",
                    "group": grp.group,
                    "endpoint": grp.endpoint,
                    "at": grp.at,
                    "items": items,
                }
                f.write(orjson.dumps(event) + b"\n")
                if grp.batch is not None:
                    f.write(orjson.dumps({"op": "created", "group": grp.group, "batch": grp.batch}) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        for grp in self.groups.values():  # the settled items are gone from the file now
            grp.items = {cid: key for cid, key in grp.items.items() if cid not in settled}


def _apply(state: _State, event: dict[str, Any]) -> None:
    op = event.get("op")
    if op == "intent":
        items = {str(cid): str(key) for cid, key in event.get("items") or []}
        gid = str(event["group"])
        state.groups[gid] = Group(gid, str(event["endpoint"]), float(event.get("at") or time.time()), items)
    elif op == "created" and event.get("group") in state.groups:
        state.groups[event["group"]].batch = str(event["batch"])
    elif op == "abandoned":
        state.groups.pop(str(event.get("group")), None)
    elif op == "settled":
        state.settled.update(str(cid) for cid in event.get("ids") or [])


def _unsettled(group: Group, settled: set[str]) -> bool:
    return any(cid not in settled for cid in group.items)
