"""``include:``: other files' contents as task keys, the way the format's knowledge tasks
name their documents."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fms_dgt.config.includes import apply_includes
from fms_dgt.config.yaml_loader import load_yaml
from fms_dgt.errors import ConfigError


def _doc(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_files_globs_and_data_files_become_task_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.md").write_text("Alpha text.")
    (tmp_path / "ch_1.md").write_text("One.")
    (tmp_path / "ch_2.md").write_text("Two.")
    (tmp_path / "seeds.yaml").write_text("- question: Q?\n  answer: A.\n")
    (tmp_path / "rows.jsonl").write_text('{"x": 1}\n{"x": 2}\n')
    path = _doc(
        tmp_path,
        {
            "task_name": "t",
            "include": {
                "documents": {"alpha": "${MY_DATA}/a.md", "chapters": "ch_*.md"},
                "seed_examples": "seeds.yaml",
                "rows": "rows.jsonl",
                "task_description": "data/a.md",  # the file's own key wins below
            },
            "task_description": "own",
        },
    )
    data = apply_includes(load_yaml(path)).data
    # documents are named for the documents source (which reads and chunks them)
    assert data["documents"] == {"path": [str(tmp_path / "data" / "a.md"), str(tmp_path / "ch_*.md")]}
    assert data["seed_examples"] == [{"question": "Q?", "answer": "A."}]
    assert data["rows"] == [{"x": 1}, {"x": 2}]
    assert data["task_description"] == "own" and "include" not in data


def test_a_missing_include_is_located(tmp_path: Path) -> None:
    path = _doc(tmp_path, {"task_name": "t", "include": {"documents": {"a": "nope.md"}}})
    with pytest.raises(ConfigError) as info:
        apply_includes(load_yaml(path))
    assert "no file matches 'nope.md'" in info.value.render() and f"{path}:3" in info.value.render()


def test_a_missing_included_file_is_located(tmp_path: Path) -> None:
    path = _doc(tmp_path, {"task_name": "t", "include": {"seed_examples": "nope.yaml"}})
    with pytest.raises(ConfigError) as info:
        apply_includes(load_yaml(path))
    assert "included file 'nope.yaml' does not exist" in info.value.render()
