"""The ``batch:`` block of an ``openai`` engine: how requests are grouped into Batch API jobs
and how the jobs are followed. Checked key by key when the task loads (an unknown key is an
error with a did-you-mean), like every other engine setting."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

# OpenAI's limits of one batch: 50,000 requests and a 200 MB input file
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class BatchOptions(BaseModel):
    """Settings of the Batch API transport.

    Attributes:
        completion_window: the job's window (OpenAI accepts ``24h``).
        max_requests: requests per job at most (OpenAI: 50,000).
        max_bytes: size of a job's input file at most (OpenAI: 200 MB; default a little less).
        collect_seconds: how long requests are gathered before a job is submitted (from the
            first request of the job); a job is submitted at once when it is full.
        poll_seconds: how often a job's status is asked for.
        state_dir: where the job journal is kept. Default: the task's output folder when the
            engine runs a task, else ``$DGT_CACHE_DIR/batches`` (``~/.cache/fms_dgt/batches``).
    """

    model_config = ConfigDict(extra="forbid")

    completion_window: str = "24h"
    max_requests: int = Field(default=MAX_REQUESTS, ge=1, le=MAX_REQUESTS)
    max_bytes: int = Field(default=190 * 1024 * 1024, ge=1024, le=MAX_BYTES)
    collect_seconds: float = Field(default=5.0, ge=0)
    poll_seconds: float = Field(default=30.0, gt=0)
    state_dir: str | None = None

    @field_validator("completion_window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not _WINDOW.match(value):
            raise ValueError("expected a duration such as '24h'")
        return value.strip()

    @property
    def window_seconds(self) -> float:
        """The completion window in seconds."""
        match = _WINDOW.match(self.completion_window)
        assert match is not None
        return float(match.group(1)) * _UNIT[match.group(2)]


def default_state_dir() -> Path:
    """Where journals go when no task folder or ``state_dir`` says otherwise."""
    root = os.environ.get("DGT_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fms_dgt"
    return base / "batches"
