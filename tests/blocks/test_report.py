"""python -m fms_dgt.report: figures from a hand-made output folder, from a real CLI run
(jsonl and parquet), and the error for a missing folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.report import main, task_report
from tests.core.helpers import REPO, read_jsonl, run_cli, write_task


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _handmade(out: Path) -> Path:
    task = out / "t1"
    rows = [{"task_name": "t1", "id": "1", "q": "a b a b"}, {"task_name": "t1", "id": "2", "q": "a b c"}]
    _jsonl(task / "data.jsonl", [*rows, {"q": "dropped later"}])
    _jsonl(task / "final_data.jsonl", rows)
    _jsonl(
        task / "rejected.jsonl",
        [
            {"record": {}, "block": "dedup", "reason": "exact duplicate", "stage": "generation"},
            {
                "record": {},
                "block": "len",
                "reason": "too short: 3 chars < min_chars 5",
                "stage": "generation",
            },
            {
                "record": {},
                "block": "len",
                "reason": "too short: 2 chars < min_chars 5",
                "stage": "generation",
            },
            {"record": {}, "block": "pp", "reason": "exact duplicate", "stage": "postprocessing"},
        ],
    )
    _jsonl(task / "failed.jsonl", [{"request": {}, "error": "timeout: 120 s", "stage": "engine"}])
    results = {"status": "complete", "target": 2, "tokens": {"prompt": 30, "completion": 12}, "requests": 4}
    (task / "task_results.json").write_text(json.dumps(results))
    return task


def test_figures_of_a_handmade_folder(tmp_path: Path) -> None:
    r = task_report(_handmade(tmp_path))
    assert r["accepted"] == 3 and r["final"] == 2 and r["status"] == "complete"
    assert r["rejected"]["total"] == 4
    assert r["rejected"]["by_stage"] == {"generation": 3, "postprocessing": 1}
    assert r["rejected"]["by_block"]["len"] == {"total": 2, "reasons": {"too short": 2}}
    assert r["failed"] == {"total": 1, "by_stage": {"engine": 1}, "errors": {"timeout": 1}}
    d = r["diversity"]
    assert d["source"] == "final_data" and d["records"] == 2
    assert d["distinct_1"] == pytest.approx(3 / 7, abs=1e-4) and d["distinct_2"] == pytest.approx(3 / 5)
    assert d["self_similarity_rouge_l"] == pytest.approx(round(2 * 2 / 7, 4))  # LCS("abab","abc")=2
    assert r["tokens"] == {"prompt": 30, "completion": 12, "total": 42}


def test_cli_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _handmade(tmp_path / "out")
    report = tmp_path / "report.json"
    assert main([str(tmp_path / "out"), "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "== t1 (complete)" in text and "too short" in text and "distinct-2 0.6" in text
    doc = json.loads(report.read_text())
    assert doc["tasks"][0]["rejected"]["total"] == 4
    assert main([str(tmp_path / "out"), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"][0]["task"] == "t1"
    # pointed at the task's own folder instead of the output directory: the same report
    assert main([str(tmp_path / "out" / "t1"), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"][0]["task"] == "t1"


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """``... | head``: output larger than a pipe's buffer, and the reader leaves early."""
    for i in range(1500):
        write_task(tmp_path / "tasks" / f"t{i}", name=f"task_with_a_long_enough_name_{i:04d}")
    cmd = f"{sys.executable} -m fms_dgt.run --list --task-paths {tmp_path / 'tasks'} | head -c 1"
    r = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr and "Broken pipe" not in r.stderr, r.stderr


def test_missing_or_empty_folder_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fms_dgt.report", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    assert main([str(tmp_path)]) == 2
    _handmade(tmp_path / "out")
    assert main([str(tmp_path / "out"), "--task", "other"]) == 2


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_report_of_a_real_run(tmp_path: Path, fmt: str) -> None:
    override = tmp_path / "override.yaml"
    engine = {
        "name": "llm1",
        "class_path": "tests.support.scripted_engine:ScriptedEngine",
        "duplicate_every": 3,
        "fail_every": 7,
        "max_retries": 0,
    }
    override.write_text(yaml.safe_dump({"builders": {"echo": {"blocks": [engine]}}}))
    task = write_task(
        tmp_path / "task",
        runner_config={"num_outputs_to_generate": 12},
        datastore={"type": "default", "output_data_format": fmt},
        filters=[{"name": "unique", "type": "minhash_dedup", "fields": ["question"]}],
    )
    out = tmp_path / "out"
    proc = run_cli("--task-paths", str(task), "--output-dir", str(out), "--config-path", str(override))
    assert proc.returncode == 0, proc.stderr
    r = task_report(out / "t1")
    assert r["status"] == "complete" and r["final"] == 12 and r["accepted"] >= 12
    assert r["rejected"]["by_block"]["unique"]["reasons"] == {
        "near duplicate (Jaccard >= 0.8)": r["rejected"]["by_block"]["unique"]["total"]
    }
    assert r["failed"]["total"] >= 1 and r["failed"]["by_stage"].get("engine")
    assert r["tokens"]["prompt"] > 0 and r["diversity"]["records"] == 12
    if fmt == "jsonl":
        assert r["accepted"] == len(read_jsonl(out / "t1" / "data.jsonl"))


def test_diversity_of_a_big_task_is_over_a_bounded_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fms_dgt.report as report

    monkeypatch.setattr(report, "DIVERSITY_MAX_RECORDS", 50)
    _jsonl(tmp_path / "t" / "data.jsonl", [{"id": str(i), "q": f"w{i} x"} for i in range(500)])
    r = task_report(tmp_path / "t")
    assert r["accepted"] == 500 and r["diversity"]["records"] == 50
    assert r["diversity"]["source"] == "a uniform sample of 500 data records"
    assert r["diversity"]["distinct_1"] == pytest.approx(51 / 100)  # 50 distinct w<i> and one x


def test_chat_records_are_measured_by_their_messages(tmp_path: Path) -> None:
    turns = [{"role": "user", "content": "a b"}, {"role": "assistant", "content": "c d"}]
    _jsonl(
        tmp_path / "t" / "data.jsonl", [{"id": "1", "messages": turns}, {"id": "2", "messages": turns[:1]}]
    )
    d = task_report(tmp_path / "t")["diversity"]
    assert d["distinct_1"] == pytest.approx(4 / 6, abs=1e-4)  # a b c d, a b
