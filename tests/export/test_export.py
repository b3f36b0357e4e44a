"""``python -m fms_dgt.export``: the dataset folder loads with a real ``datasets`` install
(offline) with identical rows both ways, the card's front matter is what the Hub reads,
nested fields are Arrow types, the training config and its warnings, the upload through
``huggingface_hub`` (a mocked HfApi: there is no network here), and the bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from fms_dgt.export.__main__ import main as export_main
from fms_dgt.export.folder import ExportError, export_task
from fms_dgt.export.training import estimate_tokens, max_seq_length, shape_warnings, size_warnings
from tests.core.helpers import REPO, read_jsonl, run_cli, write_task
from tests.export.helpers import load, rows

SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1, "seed": 3}


def _front_matter(card: Path) -> dict[str, Any]:
    text = card.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished echo task: split, extractive_qa formatted, parquet datastore."""
    tmp = tmp_path_factory.mktemp("task")
    write_task(
        tmp / "tasks",
        runner_config={"num_outputs_to_generate": 30, "save_formatted_output": True, "split": SPLIT},
        formatter={
            "type": "extractive_qa",
            "context": "{{ question }} {{ answer if id[-1] in '0123456789' else '' }}",
        },
        datastore={"output_data_format": "parquet"},
    )
    proc = run_cli("--task-paths", str(tmp / "tasks"), "--output-dir", str(tmp / "out"))
    assert proc.returncode == 0, proc.stderr
    return tmp / "out" / "t1"


def test_export_loads_identically_both_ways(task_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = export_task(task_dir, out, license="apache-2.0")
    assert sum(result.rows.values()) == 30
    assert set(result.rows) == {"train", "validation", "test"}
    meta = _front_matter(out / "README.md")
    assert meta["license"] == "apache-2.0"
    assert meta["task_categories"] == ["question-answering"]
    assert meta["size_categories"] == ["n<1K"]
    default = next(c for c in meta["configs"] if c["config_name"] == "default")
    assert {f["split"]: f["path"] for f in default["data_files"]} == {
        s: f"data/{s}-*.parquet" for s in ("train", "validation", "test")
    }

    by_folder = rows(load(tmp_path, str(out)))
    by_parquet = rows(load(tmp_path, "parquet", data_dir=str(out / "data")))
    assert by_folder == by_parquet
    # the same records the task wrote to its split stores, nested fields as they were
    from fms_dgt.report import read_store

    for split, got in by_folder.items():
        assert got == list(read_store(task_dir, f"final_data_{split}"))
    lineage = pq.read_table(next((out / "data").glob("train-*.parquet"))).schema.field("lineage").type
    assert pa.types.is_struct(lineage) and pa.types.is_list(lineage["icl_ids"].type)

    finetune = rows(load(tmp_path, str(out), "finetune"))
    for split, got in finetune.items():
        assert got == list(read_store(task_dir, f"formatted_data_{split}"))
        assert all(r["context"][r["answer_start"] :].startswith(r["answer"]) for r in got)

    config = json.loads((out / "training_config.json").read_text())
    assert config["task"] == "extractive-question-answering"
    assert config["dataset"]["data_files"]["train"] == "finetune/train-*.parquet"
    assert config["max_seq_length"] >= config["token_lengths"]["max"]
    assert any("below the minimum of 200" in w for w in config["warnings"])
    hub_card = pytest.importorskip("huggingface_hub").DatasetCard.load(out / "README.md")
    assert hub_card.data.license == "apache-2.0"
    assert [c["config_name"] for c in hub_card.data.configs] == ["default", "finetune"]
    card = (out / "README.md").read_text()
    for fragment in (
        "## Rejections by reason",
        "answer not found verbatim in the context",
        "distinct-1",
        "## Task card",
    ):
        assert fragment in card
    # exporting again into the same folder replaces it
    export_task(task_dir, out)


def test_export_without_splits_loads_from_the_folder_root(tmp_path: Path) -> None:
    write_task(tmp_path / "tasks", runner_config={"num_outputs_to_generate": 5})
    assert (
        run_cli("--task-paths", str(tmp_path / "tasks"), "--output-dir", str(tmp_path / "out")).returncode
        == 0
    )
    out = tmp_path / "ds"
    assert export_main([str(tmp_path / "out" / "t1"), str(out)]) == 0
    assert not (out / "training_config.json").exists()
    records = read_jsonl(tmp_path / "out" / "t1" / "final_data.jsonl")
    assert rows(load(tmp_path, "parquet", data_dir=str(out))) == {"train": records}
    assert rows(load(tmp_path, str(out))) == {"train": records}


def _fake_task(folder: Path, card: dict[str, Any], records: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "task_results.json").write_text(json.dumps({"task_name": "fake", "status": "complete"}))
    (folder / "task_card.json").write_text(json.dumps(card))
    (folder / "final_data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_card_redacts_the_task_config(tmp_path: Path) -> None:
    card = {
        "task_name": "fake",
        "task_description": "d",
        "data_builder": "simple",
        "task_config": {"task_name": "fake", "api_key": "sk-literal-secret", "nested": {"token": "abc123"}},
        "builder_config": {
            "blocks": [{"name": "llm1", "type": "openai", "api_key": "sk-x", "temperature": 0.3}]
        },
        "engines": [{"name": "llm1", "kind": "openai", "model": "gpt-x"}],
    }
    task = _fake_task(tmp_path / "fake", card, [{"id": "1", "text": "hello"}])
    export_task(task, tmp_path / "ds")
    text = (tmp_path / "ds" / "README.md").read_text()
    assert "sk-literal-secret" not in text and "abc123" not in text and "sk-x" not in text
    assert "temperature=0.3" in text and "gpt-x" in text


def test_push_to_hub_uses_huggingface_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    calls: list[tuple[str, dict[str, Any]]] = []

    class FakeApi:
        def __init__(self, token: str | None = None) -> None:
            calls.append(("init", {"token": token}))

        def create_repo(self, repo_id: str, **kw: Any) -> str:
            calls.append(("create_repo", {"repo_id": repo_id, **kw}))
            return f"https://huggingface.co/datasets/{repo_id}"

        def upload_folder(self, **kw: Any) -> None:
            calls.append(("upload_folder", kw))
            assert (Path(kw["folder_path"]) / "README.md").is_file()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    task = _fake_task(tmp_path / "fake", {"task_name": "fake"}, [{"id": "1", "text": "hello"}])
    assert export_main([str(task), str(tmp_path / "ds"), "--push-to-hub", "me/data", "--private"]) == 0
    kinds = [c[0] for c in calls]
    assert kinds == ["init", "create_repo", "upload_folder"]
    assert calls[1][1] == {"repo_id": "me/data", "repo_type": "dataset", "private": True, "exist_ok": True}
    assert calls[2][1]["repo_type"] == "dataset" and calls[2][1]["repo_id"] == "me/data"


def test_not_a_task_folder_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hi")
    proc = subprocess.run(
        [sys.executable, "-m", "fms_dgt.export", str(tmp_path / "stuff"), str(tmp_path / "ds")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "is not a task's output folder" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "ds").exists()
    assert export_main([str(tmp_path / "missing"), str(tmp_path / "ds")]) == 2


def test_an_output_dir_given_for_a_task_folder_names_its_tasks(tmp_path: Path, capsys) -> None:
    task = _fake_task(tmp_path / "out" / "a" / "b", {"task_name": "a/b"}, [{"id": "1", "text": "x"}])
    assert export_main([str(tmp_path / "out"), str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "is not a task's output folder" in err and f"'{task}': export one of them" in err


def test_target_holding_other_files_is_refused(tmp_path: Path) -> None:
    task = _fake_task(tmp_path / "fake", {"task_name": "fake"}, [{"id": "1", "text": "x"}])
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "precious.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty"):
        export_task(task, tmp_path / "ds")
    assert (tmp_path / "ds" / "precious.txt").read_text() == "keep me"
    with pytest.raises(ExportError, match="inside the task folder"):
        export_task(task, task / "export")


def test_task_without_final_data_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "task_results.json").write_text("{}")
    (folder / "data.jsonl").write_text('{"id": "1"}\n')
    with pytest.raises(ExportError, match="no final_data"):
        export_task(folder, tmp_path / "ds")


def test_size_and_shape_warnings() -> None:
    assert "below the minimum of 50" in size_warnings("text-generation", 20)[0]
    assert "recommended 500-1,000" in size_warnings("text-generation", 120)[0]
    assert size_warnings("text-generation", 600) == []
    assert "minimum of 100" in size_warnings("summarization", 99)[0]
    assert size_warnings("extractive-question-answering", 1500) == []
    labels = [{"input": f"review {i}", "output": ["positive", "negative"][i % 2]} for i in range(40)]
    assert "classification" in shape_warnings("text-generation", labels)[0]
    prose = [{"input": f"question {i}", "output": f"a long answer number {i} with words"} for i in range(40)]
    assert shape_warnings("text-generation", prose) == []
    assert "does not look like summarization" in " ".join(shape_warnings("summarization", prose))
    essays = [{"context": "word " * 50, "question": "q", "answer": "word " * 40}] * 5
    assert "generative QA" in shape_warnings("extractive-question-answering", essays)[0]


def test_token_estimate_and_seq_length() -> None:
    assert estimate_tokens("one two three") == 4  # 13 chars / 4, rounded up
    assert estimate_tokens("a b c d e f") == 6  # words win
    assert max_seq_length([3, 40]) == 128
    assert max_seq_length([129]) == 256
    assert max_seq_length([1024]) == 1024


def test_token_counts_from_a_tokenizer_file(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from fms_dgt.export.training import TokenCounter

    tok = tokenizers.Tokenizer(WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    counter = TokenCounter(str(tmp_path))
    assert counter.counts(["hello world , again"]) == [4]
    assert counter.method.startswith("tokenizer")
    with pytest.raises(ValueError, match="no tokenizer.json"):
        TokenCounter(str(tmp_path / "nowhere"))


def test_big_task_report_is_over_an_even_sample(
    task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fms_dgt.export.folder as folder

    monkeypatch.setattr(folder, "REPORT_MAX_RECORDS", 10)
    export_task(task_dir, tmp_path / "ds")
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "10 records of an even sample of 10 final_data records" in card
    assert "30 in final_data" in card  # the counts are the full ones
    assert list(task_dir.parent.glob("*/final_data.jsonl")) == []  # nothing written beside the task


def test_label_records_warn_as_text_generation() -> None:
    from fms_dgt.export.training import TokenCounter, training_config

    rows = {"train": [{"input": f"text {i}", "output": f"an answer {i} in words"} for i in range(600)]}
    config = training_config("text-generation", rows, {"train": "x"}, TokenCounter(), {"text", "label", "id"})
    assert any("'label' field" in w for w in config["warnings"])
    assert training_config("text-generation", rows, {"train": "x"}, TokenCounter(), {"id"})["warnings"] == []


def test_dgt_export_is_wired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fms_dgt.run import cli

    task = _fake_task(tmp_path / "fake", {"task_name": "fake"}, [{"id": "1", "text": "x"}])
    monkeypatch.setattr(sys, "argv", ["dgt", "export", str(task), str(tmp_path / "ds")])
    assert cli() == 0
    assert (tmp_path / "ds" / "README.md").is_file()
    monkeypatch.setattr(sys, "argv", ["dgt", "export", str(tmp_path), str(tmp_path / "ds2")])
    assert cli() == 2
    assert "not a task's output folder" in capsys.readouterr().err
