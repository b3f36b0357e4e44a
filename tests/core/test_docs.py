"""The documentation's examples run as written: the builder walk-through in
docs/builders.md is assembled into a real builder folder and run through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.core.helpers import REPO, read_jsonl, run_cli

DOC = REPO / "docs" / "builders.md"


def _blocks(lang: str, after: str) -> list[str]:
    """The ``lang`` code blocks of the page from the heading ``after`` on."""
    text = DOC.read_text()
    text = text[text.index(after) :]
    return [body for kind, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S) if kind == lang]


def test_builder_walkthrough_runs(tmp_path: Path) -> None:
    # the long way, from "## The YAML" on (the short way and the catalogue come before it)
    py = _blocks("python", "## The records and the task")
    builder_yaml = yaml.safe_load(_blocks("yaml", "## The YAML")[0])
    folder = tmp_path / "builders" / "qa_pairs"
    folder.mkdir(parents=True)
    # records + task, builder, custom block: the three snippets in order
    (folder / "generate.py").write_text("\n\n".join(py[:3]))
    builder_yaml["blocks"].append({"name": "nourl", "type": "no_urls"})
    builder_yaml["postprocessors"] = [{"name": "dedup", "type": "exact_dedup", "fields": ["question"]}]
    (folder / "qa_pairs.yaml").write_text(yaml.safe_dump(builder_yaml))
    task_dir = tmp_path / "tasks" / "qa"
    task_dir.mkdir(parents=True)
    (task_dir / "task.yaml").write_text(
        yaml.safe_dump(
            {
                "task_name": "qa",
                "task_description": "docs example",
                "created_by": "tests",
                "data_builder": "qa_pairs",
                "difficulty": "hard",
                "seed_examples": [{"question": "Why is the sky blue?", "answer": "Rayleigh scattering."}],
            }
        )
    )
    override = tmp_path / "override.yaml"
    override.write_text("engines:\n  class_path: tests.support.scripted_engine:ScriptedEngine\n")
    out = tmp_path / "out"
    proc = run_cli(
        "--builder-paths",
        str(tmp_path / "builders"),
        "--task-paths",
        str(task_dir),
        "--config-path",
        str(override),
        "--output-dir",
        str(out),
        "--num-outputs-to-generate",
        "5",
    )
    assert proc.returncode == 0, proc.stderr
    final = read_jsonl(out / "qa" / "final_data.jsonl")
    assert len(final) == 5
    assert all(r["question"] and r["answer"] and r["lineage"]["examples"] for r in final)
