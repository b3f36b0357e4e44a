"""What the CLI reads and writes cannot be turned against the user: no code from YAML tags,
no secret from ${ENV} in any output or log, no path outside the output directory, no
corruption when runs share an output directory, no second run of a running task."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml

from tests.core.helpers import REPO, read_jsonl, write_task
from tests.support.fault_server import FaultServer

from .crash import cli_command, cli_env
from .test_server_faults import ENGINE, _unique_pairs

SECRET = "sk-planted-Secret-4f2a9c"
SCRIPTED = {"class_path": "tests.support.scripted_engine:ScriptedEngine"}


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args),
        cwd=REPO,
        env=cli_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_python_object_tags_are_refused_and_never_run(tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    task = write_task(tmp_path / "t")
    task.write_text(task.read_text() + f"hook: !!python/object/apply:os.system ['touch {canary}']\n")
    r = _run("--task-paths", str(task), "--validate")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unsupported YAML tag" in r.stderr and "python/object/apply:os.system" in r.stderr
    assert f"{task}:" in r.stderr
    assert not canary.exists()


def test_a_planted_secret_never_reaches_outputs_or_logs(tmp_path: Path) -> None:
    """${DGT_TEST_SECRET} as an engine api_key, in a task field, and in a filter whose
    rejection reasons quote its pattern: grep every output file, stdout and stderr."""
    write_task(
        tmp_path / "t",
        task_description="generated with key ${DGT_TEST_SECRET}",
        runner_config={"num_outputs_to_generate": 20, "max_concurrent_calls": 4},
        filters=[
            {
                "name": "no_leaks",
                "type": "regex",
                "fields": ["question"],
                "must_not_match": "${DGT_TEST_SECRET}|event 1[0-9] ",
            }
        ],
    )
    override = tmp_path / "ov.yaml"
    override.write_text(yaml.safe_dump({"engines": {**ENGINE, "api_key": "${DGT_TEST_SECRET}"}}))
    out = tmp_path / "out"
    with FaultServer(responder=_unique_pairs(), script=["503", "401"]) as server:
        r = _run(
            *("--task-paths", str(tmp_path / "t"), "--config-path", str(override), "--output-dir", str(out)),
            *("--engine", "openai", "--base-url", server.url, "--model", "fake", "-v"),
            env={"DGT_TEST_SECRET": SECRET},
        )
    assert r.returncode == 0, r.stderr[-3000:]
    task_dir = out / "t1"
    assert read_jsonl(task_dir / "rejected.jsonl"), "the filter quoting the secret rejected nothing"
    assert read_jsonl(task_dir / "failed.jsonl"), "the scripted 401 left no failed record"
    assert "***" in (task_dir / "task_card.json").read_text()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), f"secret written to {path}"
    assert SECRET not in r.stdout and SECRET not in r.stderr


def test_a_task_name_cannot_escape_the_output_dir(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    bad = {
        "../../escape": "'..' segment",
        "/etc/escape": "absolute path",
        "a/../../b": "'..' segment",
        "..": "'..' segment",
        "a//b": "empty segment",
        "a/b/": "empty segment",
        "a/./b": "'.' segment",
        "a\\..\\b": "backslash",
        "C:escape": "drive",
        "a/\x07bell": "control character",
        "a/ b": "spaces",
    }
    for name, why in bad.items():
        task = write_task(tmp_path / "t", name=name)
        r = _run("--task-paths", str(task), "--output-dir", str(out))
        assert r.returncode == 2 and why in r.stderr and "plain folder name" in r.stderr, (name, r.stderr)
    # nor through an override file
    task = write_task(tmp_path / "t", name="ok_name")
    override = tmp_path / "ov.yaml"
    override.write_text(yaml.safe_dump({"tasks": {"*": {"task_name": "../../escape"}}}))
    r = _run("--task-paths", str(task), "--output-dir", str(out), "--config-path", str(override))
    assert r.returncode == 2 and "cannot change task_name" in r.stderr and f"{override}:" in r.stderr
    assert not (tmp_path / "escape").exists() and not (tmp_path / "deep" / "escape").exists()
    assert not out.exists()


def _scripted(tmp_path: Path, latency: float) -> Path:
    override = tmp_path / f"ov_{latency}.yaml"
    override.write_text(yaml.safe_dump({"engines": {**SCRIPTED, "latency": latency}}))
    return override


def test_concurrent_runs_of_different_tasks_share_an_output_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    override = _scripted(tmp_path, 0.005)
    procs = []
    for name in ("alpha", "beta", "gamma"):
        write_task(tmp_path / name, name=name, runner_config={"num_outputs_to_generate": 300})
        cmd = cli_command(
            "--task-paths", str(tmp_path / name), "--config-path", str(override), "--output-dir", str(out)
        )
        procs.append(
            subprocess.Popen(cmd, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    for name in ("alpha", "beta", "gamma"):
        final = read_jsonl(out / name / "final_data.jsonl")
        assert len(final) == 300 and len({r["id"] for r in final}) == 300
        assert {r["task_name"] for r in final} == {name}
        assert {r["task_name"] for r in read_jsonl(out / name / "data.jsonl")} == {name}
        assert json.loads((out / name / "task_results.json").read_text())["status"] == "complete"
    assert sorted(p.name for p in out.iterdir() if p.name != "fms_dgt.log") == ["alpha", "beta", "gamma"]


def test_a_second_run_of_the_same_task_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 150, "max_concurrent_calls": 2})
    args = (
        "--task-paths",
        str(tmp_path / "t"),
        "--config-path",
        str(_scripted(tmp_path, 0.05)),
        "--output-dir",
        str(out),
    )
    first = subprocess.Popen(
        cli_command(*args), cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while not (out / "t1" / "data.jsonl").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        for extra in ((), ("--restart",)):  # --restart must not wipe the running task either
            second = _run(*args, *extra, timeout=60)
            assert second.returncode == 1, second.stderr
            assert f"task 't1' is already being run by pid {first.pid}" in second.stderr
            assert "locked" in second.stdout
            assert (out / "t1" / "data.jsonl").exists()
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err.decode()[-2000:]
    final = read_jsonl(out / "t1" / "final_data.jsonl")
    assert len(final) == 150 and len({r["id"] for r in final}) == 150
