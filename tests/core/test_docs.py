"""The documentation's examples run as written: the builder walk-through in
docs/builders.md is assembled into a real builder folder and run through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.core.helpers import REPO, read_jsonl, run_cli

DOC = REPO / "docs" / "builders.md"


def _blocks(lang: str) -> list[str]:
    return [body for kind, body in re.findall(r"```(\w*)\n(.*?)```", DOC.read_text(), re.S) if kind == lang]


def test_builder_walkthrough_runs(tmp_path: Path) -> None:
    # the walk-through's snippets (the short way's PromptBuilder example is run elsewhere)
    py = [b for b in _blocks("python") if "PromptBuilder" not in b]
    # the builder YAML of "## The YAML" (the catalogue's task.yaml examples come before it)
    builder_yaml = next(y for y in map(yaml.safe_load, _blocks("yaml")) if "blocks" in y)
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
