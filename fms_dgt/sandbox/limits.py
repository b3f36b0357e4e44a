"""What one sandboxed run may use, and what it came back with."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "timeout", "killed", "memory", "error"]


class LimitError(ValueError):
    """A wrong sandbox setting; ``key`` names it, so a config error can point at its line."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Limits:
    """Per-run limits. Every field is a config key of blocks and builders that run code
    (``sandbox: {cpu_seconds: 2, ...}``).

    Args:
        cpu_seconds: CPU time (RLIMIT_CPU); the child gets SIGXCPU, then SIGKILL.
        wall_seconds: elapsed time; the runner kills the child's whole process group.
        memory_mb: address space (RLIMIT_AS). Python itself needs ~30 MB of it.
        max_processes: RLIMIT_NPROC; enforced by the kernel for non-root users only.
        max_file_mb: the largest file the code may write (RLIMIT_FSIZE).
        output_chars: how much of the end of stdout and of stderr is kept.
        allow_network: skip the network namespace and the socket refusal.
        allow_subprocess: let the code start processes (still bounded by max_processes).
        read_only: make every mount but the sandbox folder read-only (mount namespace).
        pid_namespace: run as pid 1 of a new pid namespace, so every process the code
            starts dies with it.
    """

    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_mb: int = 512
    max_processes: int = 16
    max_file_mb: int = 16
    output_chars: int = 2000
    allow_network: bool = False
    allow_subprocess: bool = False
    read_only: bool = True
    pid_namespace: bool = True

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_mb", "max_processes", "max_file_mb", "output_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LimitError(f"sandbox {name} must be a positive integer, got {value!r}", name)
        wall = self.wall_seconds
        if isinstance(wall, bool) or not isinstance(wall, (int, float)) or wall <= 0:
            raise LimitError(f"sandbox wall_seconds must be a positive number, got {wall!r}", "wall_seconds")
        if self.memory_mb < 64:
            raise LimitError(
                f"sandbox memory_mb must be at least 64 (Python needs ~30 MB), got {self.memory_mb}",
                "memory_mb",
            )

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Limits:
        """Limits from a YAML mapping; an unknown key is a ValueError naming the known ones."""
        config = dict(config or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            close = [m for u in unknown for m in difflib.get_close_matches(u, known, n=1)]
            guess = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise LimitError(
                f"unknown sandbox key(s) {', '.join(unknown)}{guess}; known: {', '.join(sorted(known))}",
                unknown[0],
            )
        return cls(**config)


@dataclass
class SandboxResult:
    """How a run ended.

    ``status``: ``ok`` (exit 0), ``error`` (an exception or a non-zero exit), ``timeout``
    (``limit`` says ``cpu`` or ``wall``), ``memory`` (MemoryError under ``memory_mb``) or
    ``killed`` (ended by a signal the sandbox did not send, e.g. a segfault).
    """

    status: Status
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float | None = None  # reported by the child when it finishes by itself
    limit: str | None = None
    exception: str | None = None
    value: Any = None
    layers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def reason(self, max_chars: int = 1500) -> str:
        """A one-paragraph rejection reason: the status first, then the output that explains it."""
        head = {
            "timeout": f"timeout: exceeded the {self.limit} time limit",
            "memory": "memory: exceeded the memory limit",
            "killed": f"killed: ended by signal {-(self.exit_code or 0)}",
            "error": f"error: exit code {self.exit_code}"
            + (f" ({self.exception})" if self.exception else ""),
            "ok": "ok",
        }[self.status]
        tail = (self.stderr.strip() or self.stdout.strip())[-max_chars:]
        return f"{head}\n{tail}" if tail else head
