"""Every malformed input in ``cases/`` gets one precise message: exit status 2, the expected
fragment, the file and line it is about, and no traceback.

Each case is a folder holding the inputs (``task.yaml`` and whatever else it needs) and an
``expected.yaml``::

    expect: ["did you mean 'seed_examples'"]   # fragments the message must contain
    file: task.yaml                             # the file the message must name ...
    line: 5                                     # ... and the line in it
    args: [--config-path, override.yaml]        # optional extra CLI arguments (paths relative)
    task: task.yaml                             # optional --task-paths (default task.yaml)
    make: huge                                  # optional: input generated at test time

Most cases run ``fms_dgt.run.main`` in-process (50 subprocess start-ups would take a
minute on CI); a few run the real ``python -m fms_dgt.run`` to prove the same holds there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.config.yaml_loader import MAX_YAML_BYTES
from fms_dgt.run import main
from tests.core.helpers import FIXTURE_BUILDERS, REPO

CASES = Path(__file__).parent / "cases"
ALL = sorted(p.name for p in CASES.iterdir() if (p / "expected.yaml").exists())
SUBPROCESS = ["misspelled_seed_examples", "yaml_python_object_tag", "non_utf8_task", "seed_file_missing"]


def _prepare(name: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    expected = yaml.safe_load((CASES / name / "expected.yaml").read_text())
    folder = CASES / name
    if expected.get("make") == "huge":
        folder = tmp_path / name
        folder.mkdir()
        filler = "# padding to make the file too big to load\n" * (MAX_YAML_BYTES // 40 + 10)
        text = "task_name: huge\n" + filler
        (folder / "task.yaml").write_text(text)
        expected["line"] = text.encode()[:MAX_YAML_BYTES].count(b"\n") + 1
    return folder, expected


def _argv(folder: Path, expected: dict[str, Any], out: Path) -> list[str]:
    extra = [str(folder / a) if (folder / a).exists() and a != "." else a for a in expected.get("args", [])]
    if "--builder-paths" in extra:
        i = extra.index("--builder-paths")
        extra.insert(i + 1, str(FIXTURE_BUILDERS))
    else:
        extra += ["--builder-paths", str(FIXTURE_BUILDERS)]
    task = folder / expected.get("task", "task.yaml")
    return ["--validate", "--no-progress", "--output-dir", str(out), "--task-paths", str(task), *extra]


def _check(name: str, status: int, err: str, folder: Path, expected: dict[str, Any]) -> None:
    assert status == 2, f"{name}: exit {status}\n{err}"
    assert "Traceback" not in err, err
    for fragment in expected["expect"]:
        assert fragment in err, f"{name}: {fragment!r} not in:\n{err}"
    where = f"{expected['file']}:{expected['line']}"
    assert where in err, f"{name}: {where!r} not in:\n{err}"
    messages = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(messages) == 1, f"{name}: not exactly one message:\n{err}"


def test_corpus_is_big_enough() -> None:
    assert len(ALL) >= 40


@pytest.mark.parametrize("name", ALL)
def test_bad_input(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, expected = _prepare(name, tmp_path)
    status = main(_argv(folder, expected, tmp_path / "out"))
    err = capsys.readouterr().err
    _check(name, status, err, folder, expected)
    assert not (tmp_path / "out").exists(), "validation wrote outputs"


@pytest.mark.parametrize("name", SUBPROCESS)
def test_bad_input_through_the_real_cli(name: str, tmp_path: Path) -> None:
    folder, expected = _prepare(name, tmp_path)
    cmd = [sys.executable, "-m", "fms_dgt.run", *_argv(folder, expected, tmp_path / "out")]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=_env())
    _check(name, r.returncode, r.stderr, folder, expected)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_validation_writes_nothing_next_to_the_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--validate over every case (from a copy, so the check sees only what validation did)
    leaves each case folder byte for byte as it was: no caches, temp files or outputs."""
    copy = tmp_path / "cases"
    shutil.copytree(CASES, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = _snapshot(copy)
    assert len(before) >= len(ALL) * 2
    for name in ALL:
        expected = yaml.safe_load((copy / name / "expected.yaml").read_text())
        if expected.get("make"):
            continue
        status = main(_argv(copy / name, expected, tmp_path / "out"))
        assert status == 2, name
    capsys.readouterr()
    assert _snapshot(copy) == before
    assert not (tmp_path / "out").exists()


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}
