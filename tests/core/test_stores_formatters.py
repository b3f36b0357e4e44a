"""Datastores (jsonl and parquet round trips), formatters, and the progress display."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest

import fms_dgt.datastores  # noqa: F401  (registers the default store)
import fms_dgt.formatters  # noqa: F401
from fms_dgt.engines.types import EngineStats
from fms_dgt.progress import Progress
from fms_dgt.registry import datastores, formatters
from tests.core.helpers import read_jsonl, run_cli, write_task

RECORDS = [
    {"id": "a", "text": "héllo ✓", "n": 1, "tags": ["x", "y"], "meta": {"k": 1.5}, "opt": None},
    {"id": "b", "text": "line\nbreak", "n": 2, "tags": [], "meta": {"k": 2.0}, "opt": "set"},
]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_datastore_round_trip(tmp_path: Path, fmt: str) -> None:
    store_cls = datastores.get("default")
    store = store_cls(store_name="data", output_dir=tmp_path, task_name="t", output_data_format=fmt)
    assert not store.exists()
    store.save_data(RECORDS[:1])
    store.save_data(RECORDS[1:])
    store.sync()
    assert list(store.load_data()) == RECORDS
    assert store.count() == 2
    store.close()
    # a new instance (a resumed run) sees the same records and keeps appending
    again = store_cls(store_name="data", output_dir=tmp_path, task_name="t", output_data_format=fmt)
    again.save_data([{**RECORDS[0], "id": "c"}])
    again.sync()
    assert [r["id"] for r in again.load_data()] == ["a", "b", "c"]
    assert again.replace(iter(RECORDS[1:])) == 1
    assert list(again.load_data()) == RECORDS[1:]
    again.clear()
    assert not again.exists()
    again.close()
    assert Path(store.location).suffix == f".{fmt}"


def test_datastore_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jsonl or parquet"):
        datastores.get("default")(
            store_name="d", output_dir=tmp_path, task_name="t", output_data_format="csv"
        )


def test_jinja_and_chat_formatters() -> None:
    jinja = formatters.get("jinja")(fields={"input": "Q: {{ question }}", "output": "{{ answer | upper }}"})
    assert jinja.format({"question": "why?", "answer": "because"}) == {
        "input": "Q: why?",
        "output": "BECAUSE",
    }
    chat = formatters.get("openai_chat")(system="Be brief.")
    out = chat.format({"question": "why?", "answer": "because"})
    assert out == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "why?"},
            {"role": "assistant", "content": "because"},
        ]
    }
    with pytest.raises(ValueError, match="record fields: answer, question"):
        jinja_missing = formatters.get("jinja")(fields={"x": "{{ nope }}"})
        jinja_missing.format({"question": "q", "answer": "a"})
    with pytest.raises(ValueError, match="not a valid Jinja template"):
        formatters.get("jinja")(fields={"x": "{{ unclosed"})


def test_preference_formatter_plain_and_chat() -> None:
    record = {"instruction": "Name a fruit.", "chosen": "An apple.", "rejected": "A chair.", "scores": [5, 1]}
    plain = formatters.get("preference")()
    assert plain.format(record) == {"prompt": "Name a fruit.", "chosen": "An apple.", "rejected": "A chair."}
    assert plain.fields_read() == {"prompt": {"instruction"}, "chosen": {"chosen"}, "rejected": {"rejected"}}
    chat = formatters.get("dpo")(chat=True, system="Be brief.", prompt="Q: {{ instruction }}")
    assert chat.format(record) == {
        "prompt": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Q: Name a fruit."},
        ],
        "chosen": [{"role": "assistant", "content": "An apple."}],
        "rejected": [{"role": "assistant", "content": "A chair."}],
    }
    with pytest.raises(ValueError, match="system needs chat: true"):
        formatters.get("preference")(system="Be brief.")


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_formatted_data_written_when_asked(tmp_path: Path, fmt: str) -> None:
    write_task(
        tmp_path / "tasks",
        runner_config={"num_outputs_to_generate": 6, "save_formatted_output": True},
        formatter={"type": "chat", "system": "sys"},
        datastore={"output_data_format": fmt},
    )
    out = tmp_path / "out"
    proc = run_cli("--task-paths", str(tmp_path / "tasks"), "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    store = datastores.get("default")(
        store_name="formatted_data", output_dir=out, task_name="t1", output_data_format=fmt
    )
    rows = list(store.load_data())
    assert len(rows) == 6
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]


def test_save_formatted_output_without_formatter_is_a_config_error(tmp_path: Path) -> None:
    write_task(tmp_path / "tasks", runner_config={"save_formatted_output": True})
    proc = run_cli("--validate", "--task-paths", str(tmp_path / "tasks"))
    assert proc.returncode == 2
    assert "formatter" in proc.stderr and "Traceback" not in proc.stderr


def test_transformation_run_end_to_end(tmp_path: Path) -> None:
    """The answer_questions example through the CLI on the scripted engine: one output per
    row, formatted with its jinja formatter."""
    override = tmp_path / "override.yaml"
    override.write_text("engines:\n  class_path: tests.support.scripted_engine:ScriptedEngine\n")
    out = tmp_path / "out"
    proc = run_cli(
        "--task-paths",
        "tasks/core/transformation/answer_questions",
        "--config-path",
        str(override),
        "--output-dir",
        str(out),
        builders=False,
    )
    assert proc.returncode == 0, proc.stderr
    final = read_jsonl(out / "answer_questions_example" / "final_data.jsonl")
    assert len(final) == 6 and all(r["answer"] for r in final)
    formatted = read_jsonl(out / "answer_questions_example" / "formatted_data.jsonl")
    assert {tuple(sorted(r)) for r in formatted} == {("input", "output")}


def test_progress_bar_shows_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    progress = Progress(use_bars=True)
    progress.start("t1", total=10)
    ledger = SimpleNamespace(engine_stats={"llm1": EngineStats(requests=40, completion_tokens=900)})
    for _ in range(10):
        progress.advance("t1", 1, ledger)
    progress.close()
    text = buf.getvalue()
    assert "t1" in text and "10/10" in text
    assert "req/s" in text and "tok/s" in text
