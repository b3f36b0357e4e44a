"""Hardware profiles: the memory arithmetic, machine detection (a fake nvidia-smi on PATH),
the engine override a profile becomes, and ``--profile`` / ``--list-profiles`` through the
real CLI (an unknown name: exit 2 with a did-you-mean)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fms_dgt.engines.profiles import (
    PROFILES,
    QWEN_7B_AWQ,
    SMOLLM2_135M,
    classify,
    detect,
    profile_engine,
    render,
)
from fms_dgt.errors import ConfigError

from .helpers import run_cli, write_task


def test_memory_arithmetic() -> None:
    # Qwen2.5-7B: 28 layers x 4 KV heads x 128 dims x K and V x 2 bytes = 56 KiB per token
    assert QWEN_7B_AWQ.kv_bytes_per_token() == 2 * 28 * 4 * 128 * 2 == 57344
    # 6.53 B params at 4.25 bits + 1.09 B embedding params at 2 bytes
    assert QWEN_7B_AWQ.weights_gb() == pytest.approx((6.53e9 * 4.25 / 8 + 1.09e9 * 2) / 2**30, rel=1e-3)
    assert SMOLLM2_135M.weights_gb() == pytest.approx(0.135e9 * 2 / 2**30)
    fit = PROFILES["gpu-8-24gb"].fit(QWEN_7B_AWQ)
    assert fit["kv_tokens"] > 8192 and fit["full_sequences"] >= 1  # one full-length request fits on 8 GiB


@pytest.mark.parametrize("name", [n for n in PROFILES if n != "cpu"])
def test_every_gpu_preset_fits_the_smallest_machine_of_its_class(name: str) -> None:
    p = PROFILES[name]
    for role, model in (("generator", p.generator), ("judge", p.judge)):
        fit = p.fit(model, judge=role == "judge")
        assert fit["full_sequences"] >= 1, f"{name} {role}: {fit}"


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        ((), "cpu"),
        ((2.0,), "cpu"),
        ((5.8,), "gpu-under-8gb"),
        ((7.8,), "gpu-8-24gb"),
        ((15.6,), "gpu-8-24gb"),
        ((22.5,), "gpu-24-80gb"),
        ((79.6,), "gpu-24-80gb"),
        ((79.6, 79.6), "multi-gpu"),
        ((15.6, 15.6), "gpu-8-24gb"),  # two small cards: the presets use one
    ],
)
def test_classify(gpus: tuple[float, ...], expected: str) -> None:
    assert classify(gpus) == expected


def _fake_smi(folder: Path, mib: list[int]) -> None:
    folder.mkdir(exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + "".join(f"echo {m}\n" for m in mib))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_detect_reads_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert detect().profile == "cpu"  # this machine's case: no nvidia-smi, torch not loaded
    _fake_smi(tmp_path / "bin", [81920, 81920, 24576])
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    m = detect()
    assert m.gpus_gb == (80.0, 80.0, 24.0) and m.source == "nvidia-smi" and m.profile == "multi-gpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert detect().profile == "gpu-24-80gb"


def test_profile_engine_is_an_engine_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    spec = profile_engine("gpu-8-24gb")
    assert spec == {
        "type": "vllm",
        "dtype": "float16",
        "max_model_len": 8192,
        "gpu_memory_utilization": 0.9,
        "model": "Qwen/Qwen2.5-7B-Instruct-AWQ",
    }
    assert profile_engine("cpu") == {"type": "vllm", "max_model_len": 2048}  # the embedded model
    assert profile_engine("multi-gpu")["engine_args"] == {"data_parallel_size": 2}
    server = profile_engine("multi-gpu", "vllm-server")
    assert server["type"] == "vllm-server" and server["server_args"][:2] == ["--dtype", "float16"]
    assert "--data-parallel-size" in server["server_args"]
    assert profile_engine("auto") == profile_engine("cpu")
    with pytest.raises(ConfigError, match="does not take"):
        profile_engine("cpu", "openai")
    with pytest.raises(ConfigError, match="did you mean 'gpu-8-24gb'") as err:
        profile_engine("gpu-8-24")
    assert err.value.field == "--profile"


def test_render_lists_every_profile_and_marks_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    text = render()
    assert "-> profile 'cpu'" in text and "cpu: no GPU (vLLM's CPU build)  <- this machine" in text
    for name in PROFILES:
        assert f"\n{name}: " in text or text.startswith(f"{name}: ") or f"\n{name}:" in text


def test_cli_profile_validates_and_lands_in_the_engine(tmp_path: Path) -> None:
    task = write_task(tmp_path / "task")
    env = {"PATH": "/usr/bin:/bin"}  # no nvidia-smi here anyway
    r = run_cli("--task-paths", str(task), "--profile", "gpu-24-80gb", "--validate", env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("--list-profiles", env=env)
    assert r.returncode == 0 and "gpu-24-80gb: one GPU with 24 to 80 GB" in r.stdout
    assert "Qwen/Qwen2.5-14B-Instruct-AWQ: weights 9.41 GiB" in r.stdout
    r = run_cli("--list", "--task-paths", str(task), env=env)
    assert r.returncode == 0 and "hardware profiles (5;" in r.stdout and "<- this machine" in r.stdout


def test_cli_unknown_profile_is_a_located_error(tmp_path: Path) -> None:
    task = write_task(tmp_path / "task")
    r = run_cli("--task-paths", str(task), "--profile", "gpu-8-24", "--validate")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--profile" in r.stderr and "unknown hardware profile 'gpu-8-24'" in r.stderr
    assert "did you mean 'gpu-8-24gb'" in r.stderr
    r = run_cli("--task-paths", str(task), "--profile", "cpu", "--engine", "openai", "--validate")
    assert r.returncode == 2 and "does not take" in r.stderr and "Traceback" not in r.stderr


def test_profile_is_the_engine_override_under_the_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--profile fills the engine override; the override file's keys for the same engine type
    stay (flags win key by key), explicit --model wins over the profile, and an error in a
    profile key would name --profile."""
    from fms_dgt.run import _overrides, build_parser

    monkeypatch.setenv("PATH", "/nonexistent")
    override = tmp_path / "ov.yaml"
    override.write_text("engines:\n  type: vllm\n  max_concurrency: 3\n  max_model_len: 1024\n")
    args = build_parser().parse_args(["--profile", "gpu-8-24gb", "--config-path", str(override)])
    ov = _overrides(args)
    assert ov.engine == {
        "type": "vllm",
        "max_concurrency": 3,
        "max_model_len": 8192,
        "dtype": "float16",
        "gpu_memory_utilization": 0.9,
        "model": "Qwen/Qwen2.5-7B-Instruct-AWQ",
    }
    assert ov.engine_flags["dtype"] == "--profile" and ov.engine_flags["model"] == "--profile"
    args = build_parser().parse_args(["--profile", "cpu", "--model", "/models/mine"])
    ov = _overrides(args)
    assert ov.engine == {"type": "vllm", "max_model_len": 2048, "model": "/models/mine"}
    assert ov.engine_flags["model"] == "--model"
