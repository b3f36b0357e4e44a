"""Every CLI flag, through the real command in a subprocess (scripted engine for speed; the
real-model end-to-end run lives in tests/e2e)."""

import json
import os
import subprocess
import sys
import time

import yaml

from tests.support.fault_server import FaultServer

from .helpers import FIXTURE_BUILDERS, REPO, read_jsonl, results, run_cli, write_task

SCRIPTED = {"class_path": "tests.support.scripted_engine:ScriptedEngine"}


def test_help_is_fast_and_documents_every_flag():
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "fms_dgt.run", "--help"], capture_output=True, text=True, check=True
    )
    assert time.monotonic() - t0 < 5
    for flag in (
        "--task-paths",
        "--builder-paths",
        "--config-path",
        "--output-dir",
        "--num-outputs-to-generate",
        "--seed-batch-size",
        "--machine-batch-size",
        "--restart",
        "--seed",
        "--validate",
        "--list",
        "--engine",
        "--model",
        "--base-url",
        "--max-concurrency",
        "--profile",
        "--list-profiles",
    ):
        assert flag in out.stdout
        assert flag in (REPO / "docs" / "cli.md").read_text(), f"{flag} missing from docs/cli.md"


def test_task_paths_folder_and_file_and_output_dir(tmp_path):
    write_task(tmp_path / "tasks" / "a", name="a")
    write_task(tmp_path / "tasks" / "deeper" / "b", name="b")
    r = run_cli("--task-paths", str(tmp_path / "tasks"), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out/a/final_data.jsonl").exists() and (tmp_path / "out/b/final_data.jsonl").exists()
    r = run_cli("--task-paths", str(tmp_path / "tasks/a/task.yaml"), "--output-dir", str(tmp_path / "out2"))
    assert r.returncode == 0 and not (tmp_path / "out2/b").exists()


def test_output_dir_from_environment_and_default(tmp_path):
    write_task(tmp_path / "t")
    r = run_cli("--task-paths", str(tmp_path / "t"), env={"DGT_OUTPUT_DIR": str(tmp_path / "envout")})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "envout/t1/final_data.jsonl").exists()
    env = {k: v for k, v in os.environ.items() if k != "DGT_OUTPUT_DIR"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "fms_dgt.run",
            "--no-progress",
            "--task-paths",
            str(tmp_path / "t"),
            "--builder-paths",
            str(FIXTURE_BUILDERS),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "output/t1/final_data.jsonl").exists()


def test_runner_flags_override_yaml(tmp_path):
    write_task(tmp_path / "t")
    r = run_cli(
        "--task-paths",
        str(tmp_path / "t"),
        "--output-dir",
        str(tmp_path / "out"),
        "--num-outputs-to-generate",
        "7",
        "--seed-batch-size",
        "1",
        "--machine-batch-size",
        "0",
        "--max-concurrent-calls",
        "2",
    )
    assert r.returncode == 0, r.stderr
    final = read_jsonl(tmp_path / "out/t1/final_data.jsonl")
    assert len(final) == 7
    assert all(len(rec["lineage"]["icl_ids"]) == 1 for rec in final)
    card = json.loads((tmp_path / "out/t1/task_card.json").read_text())
    assert (
        card["runner_config"]["seed_batch_size"] == 1 and card["runner_config"]["max_concurrent_calls"] == 2
    )


def test_machine_batch_size_mixes_synthetic_examples(tmp_path):
    write_task(tmp_path / "t")
    r = run_cli(
        "--task-paths",
        str(tmp_path / "t"),
        "--output-dir",
        str(tmp_path / "out"),
        "--num-outputs-to-generate",
        "30",
        "--seed-batch-size",
        "1",
        "--machine-batch-size",
        "2",
        "--max-concurrent-calls",
        "1",
    )
    assert r.returncode == 0, r.stderr
    final = read_jsonl(tmp_path / "out/t1/final_data.jsonl")
    seeds = {s["id"] for s in final[:0]}  # noqa: F841
    generated_ids = {rec["id"] for rec in final}
    later = final[-1]["lineage"]["icl_ids"]
    assert len(later) == 3 and any(i in generated_ids for i in later[1:])


def test_seed_flag_makes_sampling_reproducible(tmp_path):
    write_task(tmp_path / "t")
    icl = []
    for out in ("o1", "o2", "o3"):
        seed = "1" if out != "o3" else "2"
        r = run_cli(
            "--task-paths",
            str(tmp_path / "t"),
            "--output-dir",
            str(tmp_path / out),
            "--seed",
            seed,
            "--machine-batch-size",
            "0",
            "--max-concurrent-calls",
            "1",
        )
        assert r.returncode == 0, r.stderr
        icl.append([rec["lineage"]["icl_ids"] for rec in read_jsonl(tmp_path / out / "t1/final_data.jsonl")])
    assert icl[0] == icl[1] and icl[0] != icl[2]


def test_restart_and_rerun_of_complete_task(tmp_path):
    write_task(tmp_path / "t")
    args = ("--task-paths", str(tmp_path / "t"), "--output-dir", str(tmp_path / "out"))
    assert run_cli(*args).returncode == 0
    first = (tmp_path / "out/t1/final_data.jsonl").read_text()
    r = run_cli(*args)
    assert r.returncode == 0 and "already complete" in r.stderr
    assert (tmp_path / "out/t1/final_data.jsonl").read_text() == first
    (tmp_path / "out/t1/stray.txt").write_text("x")
    r = run_cli(*args, "--restart", "--num-outputs-to-generate", "4")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "out/t1/stray.txt").exists()
    assert len(read_jsonl(tmp_path / "out/t1/final_data.jsonl")) == 4


def test_validate_calls_no_model(tmp_path):
    write_task(tmp_path / "t")
    over = tmp_path / "ov.yaml"
    over.write_text(yaml.safe_dump({"engines": {**SCRIPTED, "fail_every": 1}}))
    r = run_cli(
        *("--task-paths", str(tmp_path / "t"), "--output-dir", str(tmp_path / "out")),
        *("--config-path", str(over), "--validate"),
    )
    assert r.returncode == 0 and "1 task(s) valid" in r.stdout
    assert not (tmp_path / "out").exists()  # an engine failing every request was never asked


def test_list_shows_everything():
    r = run_cli("--list", "--task-paths", str(REPO / "tasks"))
    assert r.returncode == 0, r.stderr
    for word in (
        "core/simple/logical_reasoning/causal",
        "answer_questions_example",
        "simple",
        "echo",
        "vllm",
        "openai",
        "chat",
        "jinja",
        "default",
    ):
        assert word in r.stdout


def test_config_path_overrides_tasks_builders_and_runner(tmp_path):
    write_task(tmp_path / "t")
    over = tmp_path / "ov.yaml"
    over.write_text(
        yaml.safe_dump(
            {
                "runner_config": {"num_outputs_to_generate": 6},
                "tasks": {"t1": {"runner_config": {"seed_batch_size": 2}}},
                "builders": {"echo": {"metadata": {"tag": "overridden"}}},
            }
        )
    )
    r = run_cli(
        "--task-paths", str(tmp_path / "t"), "--output-dir", str(tmp_path / "out"), "--config-path", str(over)
    )
    assert r.returncode == 0, r.stderr
    final = read_jsonl(tmp_path / "out/t1/final_data.jsonl")
    assert len(final) == 6 and all(len(x["lineage"]["icl_ids"]) == 2 for x in final)
    card = json.loads((tmp_path / "out/t1/task_card.json").read_text())
    assert card["builder_config"]["metadata"]["tag"] == "overridden"


def test_engine_flag_group_switches_every_engine(tmp_path):
    write_task(tmp_path / "t")
    task = ("--task-paths", str(tmp_path / "t"), "--output-dir", str(tmp_path / "out"), "--validate")

    def validate(url: str, model: str):
        return run_cli(
            *task, "--engine", "openai", "--model", model, "--base-url", url, "--max-concurrency", "3"
        )

    # --validate calls no model, but does ask whether the server is there: a dead port is
    # found now, not after ten minutes of retries
    r = validate("http://127.0.0.1:9/v1", "m")
    assert r.returncode == 2 and "cannot reach http://127.0.0.1:9/v1" in r.stderr, r.stderr
    assert "field '--base-url'" in r.stderr and "Traceback" not in r.stderr
    with FaultServer() as srv:
        r = validate(srv.url, "fake")
        assert r.returncode == 0, r.stderr
        assert srv.counts.get("requests", 0) == 0  # nothing generated
    r = run_cli(
        "--task-paths",
        str(tmp_path / "t"),
        "--output-dir",
        str(tmp_path / "out"),
        "--engine",
        "opneai",
        "--validate",
    )
    assert r.returncode == 2 and "did you mean 'openai'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("--task-paths", str(tmp_path / "t"), "--model", "x", "--validate")
    assert r.returncode == 2 and "--engine" in r.stderr


def test_builder_paths_flag(tmp_path):
    write_task(tmp_path / "t")
    r = run_cli("--task-paths", str(tmp_path / "t"), "--validate", builders=False)
    assert r.returncode == 2 and "unknown data builder 'echo'" in r.stderr
    r = run_cli("--task-paths", str(tmp_path / "t"), "--validate", "--builder-paths", str(FIXTURE_BUILDERS))
    assert r.returncode == 0, r.stderr


def test_config_error_exit_2_without_traceback(tmp_path):
    path = write_task(tmp_path / "t")
    path.write_text(path.read_text().replace("seed_examples", "seed_exmaples"))
    r = run_cli("--task-paths", str(path), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"{path}:" in r.stderr and "did you mean 'seed_examples'" in r.stderr
    assert not (tmp_path / "out").exists()


def test_results_counts(tmp_path):
    write_task(tmp_path / "t")
    r = run_cli("--task-paths", str(tmp_path / "t"), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 0
    res = results(tmp_path / "out")
    assert res["status"] == "complete" and res["pid"] > 0 and res["started_at"] and res["ended_at"]
    assert "final" in r.stdout and "t1" in r.stdout  # summary table


def test_runner_config_precedence_most_specific_wins(tmp_path):
    """task.yaml < file runner_config < file tasks."*" < file tasks.<name> < CLI flags."""
    from fms_dgt.run import _overrides, build_parser
    from fms_dgt.runtime import Runtime

    write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 10, "seed_batch_size": 1})
    over = tmp_path / "ov.yaml"
    over.write_text(
        yaml.safe_dump(
            {
                "runner_config": {
                    "num_outputs_to_generate": 7,
                    "seed_batch_size": 2,
                    "machine_batch_size": 1,
                },
                "tasks": {
                    "*": {"runner_config": {"seed_batch_size": 3}},
                    "t1": {"runner_config": {"seed": 9}},
                },
            }
        )
    )

    def runner(*flags: str):
        args = build_parser().parse_args(["--config-path", str(over), *flags])
        rt = Runtime([str(tmp_path / "t")], [str(FIXTURE_BUILDERS)], tmp_path / "out", _overrides(args))
        return rt.prepare()[0].task.runner_config

    rc = runner()
    assert (rc.num_outputs_to_generate, rc.seed_batch_size, rc.machine_batch_size, rc.seed) == (7, 3, 1, 9)
    rc = runner("--seed-batch-size", "4", "--seed", "5")
    assert (rc.num_outputs_to_generate, rc.seed_batch_size, rc.seed) == (7, 4, 5)


def test_api_key_env_flag_reaches_the_engine_and_the_secret_stays_out(tmp_path):
    from fms_dgt.run import _overrides, build_parser

    args = build_parser().parse_args(["--engine", "openai", "--base-url", "http://127.0.0.1:9/v1"])
    assert "api_key_env" not in _overrides(args).engine
    args = build_parser().parse_args(["--engine", "openai", "--api-key-env", "DGT_TEST_KEY"])
    assert _overrides(args).engine == {"type": "openai", "api_key_env": "DGT_TEST_KEY"}
    # through the CLI: --validate builds the engine from the flag; an unset variable is a config error
    write_task(tmp_path / "t")
    cmd = ("--task-paths", str(tmp_path / "t"), "--output-dir", str(tmp_path / "out"), "--validate")
    flags = ("--engine", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    r = run_cli(*cmd, *flags, "--api-key-env", "DGT_TEST_KEY_NOT_SET")
    assert r.returncode == 2 and "DGT_TEST_KEY_NOT_SET" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(*cmd, *flags, "--api-key-env", "DGT_TEST_KEY", env={"DGT_TEST_KEY": "sk-planted-4242"})
    assert r.returncode == 2 and "cannot reach" in r.stderr, r.stderr  # the key was read; the port is dead
    assert "sk-planted-4242" not in r.stdout + r.stderr
    with FaultServer() as srv:
        flags = ("--engine", "openai", "--base-url", srv.url, "--model", "fake")
        r = run_cli(*cmd, *flags, "--api-key-env", "DGT_TEST_KEY", env={"DGT_TEST_KEY": "sk-planted-4242"})
        assert r.returncode == 0, r.stderr
        assert "sk-planted-4242" not in r.stdout + r.stderr


def test_dgt_console_script():
    import shutil

    dgt = shutil.which("dgt")
    assert dgt, "the dgt console script is installed with the package (pip install -e .)"
    out = subprocess.run([dgt, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "--task-paths" in out.stdout


def test_bad_flag_values_are_config_errors(tmp_path):
    """Runner flags have the bounds of runner_config; a bad output dir or base URL is caught
    before any model call: exit 2, one message naming the flag, no traceback."""
    write_task(tmp_path / "t")
    (tmp_path / "a_file").write_text("x")
    base = ("--task-paths", str(tmp_path / "t"), "--validate")
    cases = [
        (
            ("--num-outputs-to-generate", "0"),
            "'--num-outputs-to-generate': input should be greater than or equal to 1",
        ),
        (("--num-outputs-to-generate", "-1"), "'--num-outputs-to-generate'"),
        (("--seed-batch-size", "-5"), "'--seed-batch-size'"),
        (("--max-concurrent-calls", "0"), "'--max-concurrent-calls'"),
        (("--output-dir", str(tmp_path / "a_file")), "is a file"),
        (("--output-dir", str(tmp_path / "a_file" / "out")), "is a file"),
        (
            ("--engine", "openai", "--model", "m", "--base-url", "notaurl"),
            "base_url 'notaurl' is not an http(s) URL",
        ),
    ]
    for flags, fragment in cases:
        args = base if "--output-dir" in flags else (*base, "--output-dir", str(tmp_path / "out"))
        r = run_cli(*args, *flags)
        assert r.returncode == 2, (flags, r.stderr)
        assert fragment in r.stderr and "Traceback" not in r.stderr, (flags, r.stderr)
        assert len([line for line in r.stderr.splitlines() if line.startswith("error:")]) == 1


def test_a_task_file_reached_twice_is_loaded_once(tmp_path):
    path = write_task(tmp_path / "t")
    r = run_cli(
        "--task-paths", str(tmp_path / "t"), str(path), "--output-dir", str(tmp_path / "out"), "--validate"
    )
    assert r.returncode == 0 and "1 task(s) valid" in r.stdout, r.stderr


def test_engine_override_keeps_each_builders_sampling(tmp_path):
    """--engine swaps the backend; the block's tuned sampling stays, the override's goes on top."""
    from fms_dgt.run import _overrides, build_parser
    from fms_dgt.runtime import Runtime

    write_task(tmp_path / "t", builder="simple")
    over = tmp_path / "ov.yaml"
    over.write_text(yaml.safe_dump({"engines": {"type": "openai", "sampling": {"temperature": 0.1}}}))
    flags = ["--engine", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"]
    builder_yaml = yaml.safe_load((REPO / "data_builders/simple/simple.yaml").read_text())
    own = next(b for b in builder_yaml["blocks"] if b["name"] == "llm1")["sampling"]
    for extra, expected in (([], own), (["--config-path", str(over)], {**own, "temperature": 0.1})):
        args = build_parser().parse_args([*extra, *flags])
        rt = Runtime([str(tmp_path / "t")], [], tmp_path / "out", _overrides(args))
        engine = rt.prepare()[0].builder.engines[0]
        assert engine.shared.kind == "openai" and engine.model == "m"
        for key, value in expected.items():
            assert getattr(engine.default_params, key) == value, (extra, key)


def test_engine_override_is_one_engine_for_every_block(tmp_path):
    """Blocks with different sampling still share one engine under an override: one
    concurrency limit, one model load or server (views differ only in sampling)."""
    from fms_dgt.run import _overrides, build_parser
    from fms_dgt.runtime import Runtime

    write_task(tmp_path / "a", name="a", builder="simple")
    rows = [{"question": "Why is the sky blue?"}]
    task_b = {
        "task_name": "b",
        "task_description": "d",
        "created_by": "me",
        "data_builder": "answer_questions",
    }
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "task.yaml").write_text(yaml.safe_dump({**task_b, "data": rows}))
    args = build_parser().parse_args(
        ["--engine", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"]
    )
    rt = Runtime([str(tmp_path / "a"), str(tmp_path / "b")], [], tmp_path / "out", _overrides(args))
    prepared = rt.prepare()
    assert len(rt.pool.all()) == 1
    shared = rt.pool.all()[0]
    views = [pt.builder.engines[0] for pt in prepared]
    assert all(getattr(v, "shared", v) is shared for v in views)
    assert views[0].default_params != views[1].default_params  # each block kept its own sampling


def test_a_complete_task_is_not_regenerated_but_edits_are_noticed(tmp_path):
    args = ("--task-paths", str(tmp_path / "t"), "--output-dir", str(tmp_path / "out"))
    write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 5})
    assert run_cli(*args).returncode == 0
    final = (tmp_path / "out/t1/final_data.jsonl").read_bytes()
    card = json.loads((tmp_path / "out/t1/task_card.json").read_text())
    assert card["task_config"]["task_name"] == "t1" and card["task_config"]["seed_examples"]
    assert card["builder_config"]["name"] == "echo"
    r = run_cli(*args)  # unchanged: nothing to say beyond "already complete"
    assert r.returncode == 0 and "already complete" in r.stderr and "config changed" not in r.stderr
    # asking for formatted output afterwards: written from final_data, nothing regenerated
    write_task(
        tmp_path / "t",
        runner_config={"num_outputs_to_generate": 5, "save_formatted_output": True},
        formatter={"type": "chat"},
    )
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "config changed since it completed" in r.stderr and "--restart" in r.stderr
    assert (tmp_path / "out/t1/final_data.jsonl").read_bytes() == final
    formatted = read_jsonl(tmp_path / "out/t1/formatted_data.jsonl")
    assert len(formatted) == 5 and formatted[0]["messages"][-1]["role"] == "assistant"


def test_formatting_a_complete_task_can_fail_without_a_traceback(tmp_path):
    args = ("--task-paths", str(tmp_path / "t"), "--output-dir", str(tmp_path / "out"))
    write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 3})
    assert run_cli(*args).returncode == 0
    write_task(
        tmp_path / "t",
        runner_config={"num_outputs_to_generate": 3, "save_formatted_output": True},
        formatter={"type": "jinja", "fields": {"x": "{{ lineage.no_such_key }}"}},
    )
    r = run_cli(*args)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "formatting the complete task failed" in r.stderr and "no_such_key" in r.stderr


def test_env_values_in_the_override_files_runner_config(tmp_path, monkeypatch):
    from fms_dgt.config.overrides import load_override_file

    over = tmp_path / "ov.yaml"
    over.write_text("runner_config:\n  num_outputs_to_generate: ${DGT_TEST_N:-50}\n")
    assert load_override_file(str(over)).file_runner == {"num_outputs_to_generate": 50}
