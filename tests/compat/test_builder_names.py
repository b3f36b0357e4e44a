"""fms-dgt's builder names resolve to ours: plain aliases (``public/instructlab/simple``
-> ``simple``) and ``data_aliases``, which mean a builder only for task files that have a
``data:`` section (fms-dgt's ``magpie`` transforms rows; ours generates)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fms_dgt.config.overrides import Overrides
from fms_dgt.listing import print_listing
from fms_dgt.run import main
from fms_dgt.runtime import Runtime

GENERATE = """
from pydantic import BaseModel

from fms_dgt import PromptTransformer, register_data_builder


class Tag(BaseModel):
    tag: str


@register_data_builder("row_tagger")
class RowTagger(PromptTransformer):
    OUTPUT = Tag

    def prompt(self, row):
        return f"Tag this: {row.text}"
"""

BUILDER = """\
name: row_tagger
data_aliases: [simple]
blocks:
  - {name: llm1, type: openai, model: fake, base_url: "http://127.0.0.1:9/v1"}
"""

TASK = """\
task_name: {name}
task_description: Tag some rows.
created_by: someone
data_builder: simple
"""


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "builders" / "row_tagger"
    folder.mkdir(parents=True)
    (folder / "generate.py").write_text(GENERATE)
    (folder / "row_tagger.yaml").write_text(BUILDER)
    tasks = tmp_path / "tasks"
    (tasks / "rows").mkdir(parents=True)
    (tasks / "rows" / "task.yaml").write_text(TASK.format(name="rows") + "data:\n  - {text: one}\n")
    (tasks / "seeds").mkdir(parents=True)
    (tasks / "seeds" / "task.yaml").write_text(
        TASK.format(name="seeds")
        + 'seed_examples:\n  - {question: "Why is ice slippery?", answer: A thin film of water.}\n'
    )
    return tasks, tmp_path / "builders"


def test_a_data_alias_applies_only_to_task_files_with_data(tmp_path: Path) -> None:
    tasks, builders = _setup(tmp_path)
    rt = Runtime([str(tasks)], [str(builders)], output_dir=tmp_path / "out", overrides=Overrides())
    prepared = {p.task.task_name: type(p.builder).__name__ for p in rt.prepare()}
    assert prepared == {"rows": "RowTagger", "seeds": "SimpleInstructDataBuilder"}


def test_the_listing_shows_data_aliases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, builders = _setup(tmp_path)
    print_listing(None, [str(builders)])
    out = capsys.readouterr().out
    assert "simple (with data:)" in out and "@data" not in out


@pytest.mark.parametrize(
    "name", ["public/instructlab/simple", "public/examples/geography_qa", "instructlab/skills"]
)
def test_their_simple_builders_are_ours(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task = tmp_path / "t" / "task.yaml"
    task.parent.mkdir()
    task.write_text(
        TASK.format(name="public/x").replace("data_builder: simple", f"data_builder: {name}")
        + 'seed_examples:\n  - {question: "Why is the sky blue?", answer: Air scatters blue light.}\n'
    )
    status = main(["--validate", "--task-paths", str(task), "--output-dir", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert status == 0 and f"builder {name})" in out, out


def test_an_unknown_name_suggests_ours_not_index_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks, builders = _setup(tmp_path)
    (tasks / "rows" / "task.yaml").write_text(
        TASK.format(name="rows").replace("simple", "simpel") + "data:\n  - {text: one}\n"
    )
    status = main(["--validate", "--task-paths", str(tasks / "rows"), "--builder-paths", str(builders)])
    err = capsys.readouterr().err
    assert status == 2 and "did you mean 'simple'" in err and "@data" not in err, err
