"""An on-disk response cache, so re-running a task does not pay for the same LLM calls twice.

Keys are content addresses (``CachedResponses.key``: engine kind, model, messages/prompt,
sampling parameters, constraint, seed and sample index); values are successful
``LMResult``s. Failures are never cached: a later run should try again.

Storage is one sqlite file in WAL mode, so readers never block the writer and several
processes (two runs sharing a cache) and threads can use it at once; a busy timeout makes a
momentarily locked database wait instead of failing. Writes are buffered and committed in
small batches (every ``batch_size`` entries or ``flush_seconds``), so a crash loses at most
the last few uncommitted responses and sqlite's journal keeps the file consistent. No
transaction is held open between batches: another process is never locked out.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

try:  # orjson is faster, but the cache also serves engines installed without the openai extra
    import orjson

    _dumps, _loads = orjson.dumps, orjson.loads
except ImportError:  # pragma: no cover
    import json

    def _dumps(obj: Any) -> bytes:  # type: ignore[misc]
        return json.dumps(obj, ensure_ascii=False).encode()

    _loads = json.loads  # type: ignore[assignment]

from fms_dgt.engines.types import LMRequest, LMResult

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL NOT NULL)"
)
_FIELDS = frozenset(f.name for f in dataclasses.fields(LMResult))


def default_cache_path() -> Path:
    """``$DGT_CACHE_DIR/responses.sqlite``, else ``~/.cache/fms_dgt/responses.sqlite``."""
    root = os.environ.get("DGT_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fms_dgt"
    return base / "responses.sqlite"


class ResponseCache:
    """A thread-safe sqlite key → ``LMResult`` store (see the module docstring).

    Args:
        path: the sqlite file (created with its parent directories).
        batch_size: buffered writes that trigger a commit.
        flush_seconds: age of the oldest buffered write that triggers a commit.
        busy_timeout: seconds to wait for another process's write lock.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 32,
        flush_seconds: float = 1.0,
        busy_timeout: float = 30.0,
    ) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        # autocommit mode: transactions are explicit (BEGIN ... COMMIT in _flush_locked)
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=busy_timeout, check_same_thread=False, isolation_level=None
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(_SCHEMA)
        self._pending: dict[str, bytes] = {}
        self._oldest: float = 0.0
        self.hits = 0
        self.misses = 0

    @classmethod
    def open(cls, setting: bool | str | Path) -> ResponseCache:
        """From an engine's ``cache`` setting: ``True`` → the default file, a path → that file."""
        if setting is True:
            return cls(default_cache_path())
        if isinstance(setting, (str, Path)) and str(setting).strip():
            return cls(setting)
        raise ValueError(f"cache must be true or a file path, not {setting!r}")

    def get(self, key: str) -> LMResult | None:
        """The cached result for ``key`` (marked ``cached=True``), or None."""
        with self._lock:
            blob = self._pending.get(key)
            if blob is None:
                if self._db is None:
                    return None
                row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
                blob = row[0] if row else None
            if blob is None:
                self.misses += 1
                return None
            self.hits += 1
        return _decode(blob)

    def put(self, key: str, result: LMResult) -> None:
        """Store a successful result; errors are ignored (they must be retried next time)."""
        if not result.ok:
            return
        blob = _encode(result)
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending[key] = blob
            if len(self._pending) >= self.batch_size or time.monotonic() - self._oldest >= self.flush_seconds:
                self._flush_locked()

    def flush(self) -> None:
        """Commit buffered writes now."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Commit and close (idempotent)."""
        with self._lock:
            if self._db is None:
                return
            self._flush_locked()
            self._db.close()
            self._db = None

    def __len__(self) -> int:
        with self._lock:
            if self._db is None:
                return len(self._pending)
            stored = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            return stored + sum(1 for k in self._pending if not self._has_locked(k))

    def _has_locked(self, key: str) -> bool:
        assert self._db is not None
        return self._db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def _flush_locked(self) -> None:
        if not self._pending or self._db is None:
            return
        now = time.time()
        rows = [(k, v, now) for k, v in self._pending.items()]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)", rows
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._pending.clear()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close() still commits what it can
        try:
            self.close()
        except Exception:
            pass


class CachedResponses:
    """An engine's view of the cache: keys requests by content and by occurrence.

    The k-th identical request of a run is sample k, so repeats are not collapsed into one
    answer (a builder asking the same prompt five times wants five samples), and a second
    run of the same task finds its answers in the same order."""

    def __init__(self, cache: ResponseCache, kind: str) -> None:
        self.cache = cache
        self.kind = kind
        self._occurrences: dict[str, int] = {}

    def key(self, request: LMRequest, model: str) -> str:
        base = request.cache_key(self.kind, model)
        index = self._occurrences.get(base, 0)
        self._occurrences[base] = index + 1
        return f"{base}:{index}"

    def get(self, key: str) -> LMResult | None:
        return self.cache.get(key)

    def put(self, key: str, result: LMResult) -> None:
        self.cache.put(key, result)

    def close(self) -> None:
        self.cache.close()


def _encode(result: LMResult) -> bytes:
    data: dict[str, Any] = dataclasses.asdict(result)
    data.pop("cached", None)
    return _dumps(data)


def _decode(blob: bytes) -> LMResult:
    data = _loads(blob)
    result = LMResult(**{k: v for k, v in data.items() if k in _FIELDS})
    result.cached = True
    return result
