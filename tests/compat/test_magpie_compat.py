"""IBM fms-dgt's magpie task files (``data_builder: magpie`` with a ``data:`` section of
rows) run under ``magpie_tag`` unchanged: the rows, with their own ``task_name`` and
``is_seed`` columns, are tagged and kept whole, and the ``magpie_row`` formatter writes
their output layout (the row's columns plus ``magpie_tags``). Without ``data:`` the name
still means our generation builder. Their task file and data are written here in their
format."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fms_dgt.config.overrides import Overrides
from fms_dgt.run import main
from fms_dgt.runtime import Runtime
from tests.catalogue.test_magpie_tag_mechanics import tagger
from tests.catalogue.transform_server import response
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer

TASK = """\
######################################################
#                   MANDATORY FIELDS
######################################################
task_name: magpie
task_description: Magpie transformation pipeline consisting of tagging, dedup and/or filtering
created_by: Someone

data_builder: magpie

######################################################
#                   RESERVED FIELDS
######################################################
data:
  type: default
  data_path: ${DGT_DATA_DIR}/public/magpie/data.jsonl
"""

ROWS = [
    {
        "task_name": "magpie",
        "is_seed": False,
        "question": "Which ocean is the deepest?",
        "answer": "The Pacific.",
    },
    {
        "task_name": "magpie",
        "is_seed": False,
        "question": "What is the capital of Kenya?",
        "answer": "Nairobi",
    },
    {
        "task_name": "magpie",
        "is_seed": False,
        "question": "Which ocean is the deepest?",
        "answer": "Pacific Ocean",
    },
    {
        "task_name": "magpie",
        "is_seed": False,
        "question": "How tall is Mount Fuji?",
        "answer": "3,776 metres.",
    },
]


def _files(root: Path, task: str = TASK) -> Path:
    data = root / "data" / "public" / "magpie"
    data.mkdir(parents=True)
    (data / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    folder = root / "tasks" / "public" / "magpie"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(task)
    return folder / "task.yaml"


def _prepare(task: Path, out: Path, engine: dict[str, Any], **runner: Any) -> Runtime:
    rt = Runtime([str(task)], [], output_dir=out, overrides=Overrides(engine=engine, runner=runner))
    rt.prepare()
    return rt


def test_their_task_file_validates_as_magpie_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _files(tmp_path)
    monkeypatch.setenv("DGT_DATA_DIR", str(tmp_path / "data"))
    assert main(["--validate", "--task-paths", str(task), "--output-dir", str(tmp_path / "o")]) == 0
    assert "builder magpie)" in capsys.readouterr().out
    engine = {"type": "openai", "model": "fake", "base_url": "http://127.0.0.1:9/v1"}
    [prepared] = _prepare(task, tmp_path / "out", engine).prepared
    assert type(prepared.builder).__name__ == "MagpieTag"


def test_magpie_without_data_is_still_our_generator(tmp_path: Path) -> None:
    folder = tmp_path / "gen"
    folder.mkdir()
    (folder / "task.yaml").write_text(
        "task_name: chats\ntask_description: Chats.\ncreated_by: someone\ndata_builder: magpie\n"
        'pre_query_template: "<|im_start|>user\\n"\n'
    )
    engine = {"type": "openai", "model": "fake", "base_url": "http://127.0.0.1:9/v1"}
    [prepared] = _prepare(folder / "task.yaml", tmp_path / "out", engine).prepared
    assert type(prepared.builder).__name__ == "MagpieBuilder"


def test_their_task_file_runs_with_their_output_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # their default filter criteria, and the formatter writing their final_data layout
    task = _files(
        tmp_path,
        TASK
        + "filter_criteria:\n"
        + '  input_quality: ["good", "excellent"]\n'
        + '  sample_quality: ["4", "5"]\n'
        + "formatter:\n  type: magpie_row\n"
        + "runner_config:\n  save_formatted_output: true\n",
    )
    monkeypatch.setenv("DGT_DATA_DIR", str(tmp_path / "data"))
    poor = json.dumps({"explanation": "Too short.", "score": 2})
    reply = tagger({("sample_quality", "Nairobi"): poor})

    with FaultServer(responder=lambda path, body: response(path, body, reply(body))) as srv:
        engine = {"type": "openai", "model": "fake", "base_url": srv.url, "max_retries": 1}
        rt = _prepare(task, tmp_path / "out", engine)
        outcome = asyncio.run(rt.run())[0]
    assert outcome.status == "complete", outcome.message
    task_dir = tmp_path / "out" / "magpie"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert [r["row"] for r in final] == [ROWS[0], ROWS[3]]  # Nairobi filtered out, the repeat removed
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert formatted[0] == {**ROWS[0], "magpie_tags": final[0]["magpie_tags"]}
    assert formatted[0]["task_name"] == "magpie" and formatted[0]["magpie_tags"]["judge_quality_score"] == 5
    reasons = {r["block"]: r["reason"] for r in read_jsonl(task_dir / "rejected.jsonl")}
    assert reasons == {
        "magpie_filter": "sample_quality '2' is not among the labels kept (4, 5)",
        "near_duplicates": "near duplicate (Jaccard >= 0.8)",
    }
