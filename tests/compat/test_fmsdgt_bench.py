"""``bench.fmsdgt_tasks`` measures a tree of fms-dgt task files: per file whether it loads
(or why not) and, with ``--run``, whether it runs to its target on the loopback stub server
(or what stopped it). The tree here is written in their format for these tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import REPO, child_env

HERE = Path(__file__).parent / "fmsdgt"

NO_COUNTERPART = """\
task_name: compat/series
task_description: A builder with no counterpart here.
created_by: fms_dgt tests
data_builder: time_series
"""

# a knowledge-style question pattern the stub does not follow: the run stalls and the table
# says why (the failed requests' error), instead of counting the task
NEVER_ANSWERED = """\
task_name: compat/stalls
task_description: Seeds whose builder constrains answers by regex.
created_by: fms_dgt tests
data_builder: knowledge_qa
include:
  documents:
    notes: ${DGT_DATA_DIR}/documents.jsonl
seed_examples:
  - {question: "What is the rule?", answer: The rule says so.}
"""


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    tasks = tmp_path / "tasks"
    shutil.copytree(HERE / "chit_chat", tasks / "public" / "chit_chat")
    (tasks / "public" / "series").mkdir(parents=True)
    (tasks / "public" / "series" / "task.yaml").write_text(NO_COUNTERPART)
    return tasks


def measure(tasks: Path, tmp_path: Path, *extra: str) -> tuple[str, str]:
    md = tmp_path / "table.md"
    out = subprocess.run(
        [sys.executable, "-m", "bench.fmsdgt_tasks", "--tasks", str(tasks), "--data", str(HERE / "data")]
        + ["--markdown", str(md), *extra],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout, md.read_text()


def test_loads_per_file_with_the_reason(tree: Path, tmp_path: Path) -> None:
    printed, written = measure(tree, tmp_path)
    assert printed.strip() == written.strip()
    assert "python -m bench.fmsdgt_tasks --tasks" in printed  # the exact command
    rows = {ln.split("|")[1].strip(): ln for ln in printed.splitlines() if ln.startswith("| `")}
    assert "| yes | not run |" in rows["`public/chit_chat/task.yaml`"]
    series = rows["`public/series/task.yaml`"]
    assert "| no |" in series and "'time_series'" in series and "nothing here does that job" in series
    assert "1 of 2 files load." in printed


def test_runs_to_target_on_the_stub(tree: Path, tmp_path: Path) -> None:
    (tree / "public" / "stalls").mkdir()
    (tree / "public" / "stalls" / "task.yaml").write_text(NEVER_ANSWERED)
    printed, _ = measure(tree, tmp_path, "--run", "--target", "2", "--timeout", "300")
    rows = {ln.split("|")[1].strip(): ln for ln in printed.splitlines() if ln.startswith("| `")}
    assert "| yes | yes (2 records) |" in rows["`public/chit_chat/task.yaml`"]
    stalls = rows["`public/stalls/task.yaml`"]
    assert "| yes | no |" in stalls and "stalled" in stalls and "requests failed" in stalls
    assert "2 of 3 files load; 1 of 2 run to their target of 2 on the loopback stub server." in printed


def test_a_run_past_its_timeout_is_killed_and_said(tree: Path, tmp_path: Path) -> None:
    # a target no run reaches in 1 s even on a quiet machine (3 records can take less)
    printed, _ = measure(tree, tmp_path, "--run", "--target", "100000", "--timeout", "1")
    row = next(ln for ln in printed.splitlines() if ln.startswith("| `public/chit_chat/task.yaml`"))
    assert "| yes | no |" in row and "timed out after 1 s" in row
    assert "0 of 1 run to their target" in printed
