"""Helpers for crash tests: start the real CLI in a subprocess, wait for a chosen phase of
the run, then SIGKILL it at a random moment inside that phase."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.core.helpers import FIXTURE_BUILDERS, REPO
from tests.support.slow_blocks import read_phases

PHASE_WAIT_SECONDS = 30.0


def cli_command(*args: str) -> list[str]:
    """``python -m fms_dgt.run`` with the test builders and plain log lines."""
    return [
        sys.executable,
        "-m",
        "fms_dgt.run",
        "--no-progress",
        "--builder-paths",
        str(FIXTURE_BUILDERS),
        *args,
    ]


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def data_progress(path: Path) -> tuple[int, ...]:
    """Changes whenever records are appended: lines of a jsonl store, or part files and log
    lines of a parquet store folder."""
    if path.is_dir():
        return (len(list(path.glob("part-*.parquet"))), count_lines(path / "wal.jsonl"))
    return (count_lines(path),)


@dataclass
class KillLog:
    """What each attempt did: the phase aimed at, and whether the kill landed in it."""

    attempts: list[tuple[str, str]] = field(default_factory=list)  # (aimed phase, outcome)

    def landed(self, phase: str) -> int:
        return sum(1 for aimed, outcome in self.attempts if aimed == phase and outcome == "killed")

    @property
    def kills(self) -> int:
        return sum(1 for _, outcome in self.attempts if outcome == "killed")


def kill_during(
    cmd: list[str],
    phase: str,
    *,
    data_file: Path,
    marker: Path,
    rng: random.Random,
    max_delay: float,
    log_file: Path,
) -> str:
    """Run ``cmd``; once it is in ``phase`` wait a random 0..``max_delay`` s and SIGKILL it.

    ``generation`` is recognised by ``data_file`` (a jsonl file or parquet folder) growing; ``postprocessing`` and
    ``formatting`` by the slow fixtures announcing themselves in ``marker`` with this pid.
    Returns ``killed``, or ``exited`` if the run ended before (or during) the wait."""
    start = data_progress(data_file)
    with open(log_file, "ab") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=cli_env(), stdout=err, stderr=err)
    deadline = time.monotonic() + PHASE_WAIT_SECONDS
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if phase == "generation":
                reached = data_progress(data_file) not in (start, (0, 0))
            else:
                reached = any(p["pid"] == proc.pid and p["phase"] == phase for p in read_phases(marker))
            if reached:
                time.sleep(rng.uniform(0.0, max_delay))
                if proc.poll() is not None:
                    break
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return "killed"
            time.sleep(0.01)
        if proc.poll() is None:
            raise AssertionError(f"{phase} not reached within {PHASE_WAIT_SECONDS}s; see {log_file}")
        return "exited"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
