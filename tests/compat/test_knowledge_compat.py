"""IBM fms-dgt's InstructLab knowledge task files run under ``knowledge_qa`` unchanged: the
builder name ``instructlab/knowledge``, ``include: {documents: ...}`` or a ``knowledge``
datastore, ``chunk_size`` in words, ``num_icl_examples_per_prompt``, and the fields with no
use here accepted with a warning. The task files are written here in their format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.config.overrides import Overrides
from fms_dgt.run import main
from fms_dgt.runtime import Runtime
from tests.catalogue.test_knowledge_qa import Responder, _run
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer

TIDES = (
    "# Tides\n\nTides are the regular rise and fall of the sea. The Moon pulls the water "
    "nearest to it, and a second bulge forms on the far side of the Earth. Most coasts see "
    "two high tides a day. Spring tides happen when the Sun and the Moon line up.\n"
)
GLACIERS = (
    "Glaciers are rivers of ice. Snow that does not melt in summer is pressed into ice over "
    "many years. A glacier moves downhill under its own weight and carves valleys.\n"
)


def _data(root: Path) -> Path:
    data = root / "data" / "geo"
    data.mkdir(parents=True)
    (data / "origins_tides.md").write_text(TIDES)
    (data / "origins_glaciers.md").write_text(GLACIERS)
    (data / "deep").mkdir()
    with open(data / "deep" / "records.jsonl", "w") as f:
        f.write(json.dumps({"content": TIDES, "domain": "ocean"}) + "\n")
        f.write(json.dumps({"content": GLACIERS, "domain": "ice"}) + "\n")
    (data / "deep" / "notes.md").write_text("Not a jsonl file: left out by data_formats.\n")
    return root / "data"


HEAD = """\
task_name: instructlab/knowledge/geo/{name}
task_description: Teaching a model about the earth
created_by: Someone
data_builder: instructlab/knowledge
seed_examples:
  - question: What is a river delta?
    answer: A delta is land built where a river drops its sediment.
  - question: Why is the sea salty?
    answer: Rivers carry dissolved salts into the sea.
formatter:
  type: formatters/native
  format:
    input: "{{{{question}}}}"
    output: "{{{{answer}}}}"
    domain: "{{{{domain}}}}"
runner_config:
  save_formatted_output: true
domain: earth_science
chunk_size: 20
loop_over: True
num_icl_examples_per_prompt: 1
num_docs_per_iteration: 100
question_style: FRQ
criteria:
  - faithfulness
  - relevancy
"""

INCLUDED = """\
include:
  documents:
    origins_group: ${DGT_DATA_DIR}/geo/origins_*   # a glob
    tides: ${DGT_DATA_DIR}/geo/origins_tides.md  # one file
"""

DATASTORE = """\
knowledge:
  datastore_config:
    type: default
    store_name: documents
    data_path: ${DGT_DATA_DIR}/geo/**
    data_formats:
      - jsonl
  fields:
    "*": "*"
"""


def _tasks(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "tasks"
    for name, body in (("included", INCLUDED), ("datastore", DATASTORE)):
        (root / name).mkdir(parents=True)
        (root / name / "task.yaml").write_text(HEAD.format(name=name) + body)
    return root / "included" / "task.yaml", root / "datastore" / "task.yaml"


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = _data(tmp_path)
    monkeypatch.setenv("DGT_DATA_DIR", str(data))
    return data


def test_their_knowledge_files_validate_with_warnings_for_unused_fields(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tasks(tmp_path)
    status = main(
        ["--validate", "--task-paths", str(tmp_path / "tasks"), "--output-dir", str(tmp_path / "o")]
    )
    out, err = capsys.readouterr()
    assert status == 0, out + err
    assert (
        "ok  instructlab/knowledge/geo/included" in out and "ok  instructlab/knowledge/geo/datastore" in out
    )
    for field in ("loop_over", "num_docs_per_iteration", "criteria"):
        assert f"field '{field}' is accepted but not used" in err, (field, err)


def _prepared(task: Path, out: Path) -> Any:
    rt = Runtime([str(task)], [], output_dir=out, overrides=Overrides())
    return rt.prepare()[0].task


def test_included_documents_go_through_the_documents_source(tmp_path: Path, data_dir: Path) -> None:
    included, _ = _tasks(tmp_path)
    task = _prepared(included, tmp_path / "o")
    files = sorted({c.document.file.name for c in task.documents.chunks})
    assert files == ["origins_glaciers.md", "origins_tides.md"]  # the glob and the file: once each
    config = task.documents_config
    assert (config.chunk_tokens, config.overlap_tokens) == (20, 0)  # chunk_size words, no overlap
    assert all(c.end - c.start > 0 for c in task.documents.chunks)
    assert len(task.documents.chunks) > 2  # 20-word chunks
    assert task.runner_config.seed_batch_size == 1  # num_icl_examples_per_prompt


def test_a_knowledge_datastore_reads_its_records_content(tmp_path: Path, data_dir: Path) -> None:
    _, datastore = _tasks(tmp_path)
    task = _prepared(datastore, tmp_path / "o")
    docs = task.documents.documents
    assert [d.file.name for d in docs] == ["records.jsonl", "records.jsonl"]  # notes.md left out
    assert docs[0].text == TIDES and docs[1].record == 1


def test_a_knowledge_file_runs_to_its_target(tmp_path: Path, data_dir: Path) -> None:
    included, _ = _tasks(tmp_path)
    with FaultServer(responder=Responder()) as srv:
        _, outcome = _run(included, srv.url, tmp_path / "out", target=3)
    assert outcome.status == "complete", outcome.message
    folder = tmp_path / "out/instructlab/knowledge/geo/included"
    final = read_jsonl(folder / "final_data.jsonl")
    assert len(final) == 3 and all(r["domain"] == "earth_science" for r in final)
    formatted = read_jsonl(folder / "formatted_data.jsonl")
    assert [set(r) for r in formatted] == [{"input", "output", "domain"}] * 3


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"chunk_size": "big"}, "chunk_size"),
        ({"knowledge": {"datastore_config": {"data_pth": "x"}}}, "knowledge.datastore_config.data_pth"),
        ({"include": {"documents": {"a": "${DGT_DATA_DIR}/geo/nope.md"}}}, "no file matches"),
        ({"documents": {"path": "x"}, "include": None}, "give documents or knowledge, not both"),
    ],
)
def test_mistakes_in_their_fields_are_located(
    tmp_path: Path, data_dir: Path, change: dict[str, Any], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, datastore = _tasks(tmp_path)
    data = yaml.safe_load(datastore.read_text())
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    datastore.write_text(yaml.safe_dump(data, sort_keys=False))
    status = main(["--validate", "--task-paths", str(datastore), "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and expected in err and str(datastore) in err, err
