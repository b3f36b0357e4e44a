"""``${DGT_DATA_DIR}`` names a folder, not a credential: an error about a file missing under
it shows the whole path that was looked at (fms-dgt users fix their data layout from that
message), while a value of any other variable is still masked wherever the framework writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fms_dgt.config.env import expand_env, redact
from fms_dgt.run import main

TASK = """\
task_name: compat/missing_seeds
task_description: Seeds under the data folder that is not there.
created_by: fms_dgt tests
data_builder: public/instructlab/simple
seed_datastore:
  type: default
  data_path: ${DGT_DATA_DIR}/public/nowhere/seed_examples.jsonl
"""


def test_a_missing_file_under_the_data_dir_is_named_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "their_data"
    data.mkdir()
    monkeypatch.setenv("DGT_DATA_DIR", str(data))
    task = tmp_path / "task.yaml"
    task.write_text(TASK)
    code = main(
        ["--validate", "--no-progress", "--task-paths", str(task), "--output-dir", str(tmp_path / "out")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"{task}:7" in err
    assert f"{data}/public/nowhere/seed_examples.jsonl" in err and "***" not in err


def test_other_variables_stay_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DGT_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("MY_TOKEN", "tok-123456789")
    monkeypatch.setattr("fms_dgt.config.env.SECRET_VALUES", set())
    value = expand_env({"api_key": "${MY_TOKEN}", "out": "${DGT_OUTPUT_DIR}/x"})
    assert value == {"api_key": "tok-123456789", "out": f"{tmp_path}/outputs/x"}
    assert redact(f"{value}") == f"{{'api_key': '***', 'out': '{tmp_path}/outputs/x'}}"
