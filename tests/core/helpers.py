"""Helpers for core tests: write task files and run the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURE_BUILDERS = REPO / "tests" / "fixtures" / "builders"

SEEDS = [
    {"question": "Why is the road wet?", "answer": "It rained."},
    {"question": "Why did the ice melt?", "answer": "The room was warm."},
    {"question": "Why is the plant bent?", "answer": "It grows toward light."},
    {"question": "Why did the cake burn?", "answer": "The oven was too hot."},
]


def write_task(folder: Path, name: str = "t1", builder: str = "echo", **extra: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "task_name": name,
        "task_description": "test task",
        "created_by": "tests",
        "data_builder": builder,
        "seed_examples": SEEDS,
        "runner_config": {"num_outputs_to_generate": 10},
    }
    data.update(extra)
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_cli(
    *args: str,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    builders: bool = True,
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "fms_dgt.run", "--no-progress", *args]
    if builders and "--builder-paths" not in args:
        cmd += ["--builder-paths", str(FIXTURE_BUILDERS)]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def results(out: Path, task: str = "t1") -> dict[str, Any]:
    return json.loads((out / task / "task_results.json").read_text())
