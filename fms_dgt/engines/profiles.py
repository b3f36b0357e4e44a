"""Hardware profiles: which models and vLLM settings fit a machine, ``--profile NAME``.

A profile is a preset for one class of machine (CPU only, one GPU under 8 GB, 8-24 GB,
24-80 GB, several GPUs): a recommended generator and judge model, and the vLLM engine
settings that fit them (dtype, max_model_len, gpu_memory_utilization, tensor/data parallel).
``--profile`` applies the generator's settings as the run's engine override, the same path
as ``--engine`` (every engine block of every builder uses it; the blocks keep their own
sampling); explicit ``--engine``/``--model`` flags win key by key. ``--profile auto`` picks
the class of this machine (``detect``).

Why the figures are computed, not typed in: what fits is arithmetic on the model's shape
(``ModelSpec.weights_gb``, ``kv_bytes_per_token``), so ``--list-profiles`` and
docs/engines.md show how much KV cache each preset leaves at the smallest memory of its class.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

GIB = 1024**3
AWQ_BITS = 4.25  # 4-bit weights plus a 16-bit scale and zero point per group of 128
OVERHEAD_GB = 0.8  # CUDA graphs, activations and sampler buffers inside vLLM's budget (rough)


@dataclass(frozen=True)
class ModelSpec:
    """A model's shape: enough to size its weights and its KV cache."""

    name: str | None  # hub name; None = the embedded default model (SmolLM2-135M-Instruct)
    label: str
    params_b: float  # parameters, billions
    embed_b: float  # embedding (+ untied lm_head) parameters, billions: kept in 16 bits by AWQ
    layers: int
    kv_heads: int
    head_dim: int
    quant: str | None = None  # "awq" or None (16-bit weights)

    def weights_gb(self) -> float:
        """Weights in GiB: params x bytes per param (2 for fp16/bf16; AWQ: 4.25 bits for the
        linear layers, 2 bytes for the embeddings)."""
        if self.quant == "awq":
            total = (self.params_b - self.embed_b) * 1e9 * AWQ_BITS / 8 + self.embed_b * 1e9 * 2
        else:
            total = self.params_b * 1e9 * 2
        return total / GIB

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """K and V for every layer: 2 x layers x kv_heads x head_dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


SMOLLM2_135M = ModelSpec(None, "SmolLM2-135M-Instruct (embedded default)", 0.135, 0.028, 30, 3, 64)
QWEN_05B = ModelSpec("Qwen/Qwen2.5-0.5B-Instruct", "Qwen2.5-0.5B-Instruct", 0.494, 0.136, 24, 2, 64)
QWEN_15B = ModelSpec("Qwen/Qwen2.5-1.5B-Instruct", "Qwen2.5-1.5B-Instruct", 1.54, 0.233, 28, 2, 128)
QWEN_3B_AWQ = ModelSpec(
    "Qwen/Qwen2.5-3B-Instruct-AWQ", "Qwen2.5-3B-Instruct-AWQ", 3.09, 0.311, 36, 2, 128, "awq"
)
QWEN_7B_AWQ = ModelSpec(
    "Qwen/Qwen2.5-7B-Instruct-AWQ", "Qwen2.5-7B-Instruct-AWQ", 7.62, 1.09, 28, 4, 128, "awq"
)
QWEN_14B_AWQ = ModelSpec(
    "Qwen/Qwen2.5-14B-Instruct-AWQ", "Qwen2.5-14B-Instruct-AWQ", 14.7, 1.56, 48, 8, 128, "awq"
)
QWEN_32B_AWQ = ModelSpec(
    "Qwen/Qwen2.5-32B-Instruct-AWQ", "Qwen2.5-32B-Instruct-AWQ", 32.5, 1.56, 64, 8, 128, "awq"
)
QWEN_72B_AWQ = ModelSpec(
    "Qwen/Qwen2.5-72B-Instruct-AWQ", "Qwen2.5-72B-Instruct-AWQ", 72.7, 2.49, 80, 8, 128, "awq"
)


@dataclass(frozen=True)
class Profile:
    """A machine class and what to run on it."""

    name: str
    machine: str  # the class, in words
    min_gb: float  # memory per GPU the figures are computed for (the smallest of the class)
    max_gb: float | None
    generator: ModelSpec
    judge: ModelSpec
    settings: dict[str, Any] = field(default_factory=dict)  # vLLM engine keys for the generator
    judge_settings: dict[str, Any] = field(default_factory=dict)  # what differs for the judge
    multi_gpu: bool = False
    note: str = ""

    def engine(self, gpus: int = 2) -> dict[str, Any]:
        """The engine override (an engine block's keys) for the generator; ``gpus``: GPUs for
        a multi-GPU profile (one model replica per GPU)."""
        spec: dict[str, Any] = {"type": "vllm", **self.settings}
        if self.generator.name is not None:
            spec["model"] = self.generator.name
        if self.multi_gpu:
            spec["engine_args"] = {"data_parallel_size": max(2, gpus)}
        return spec

    def fit(self, model: ModelSpec, judge: bool = False, gpus: int = 2) -> dict[str, float]:
        """Memory arithmetic at ``min_gb`` per GPU: weights, KV cache left, tokens it holds and
        full-length sequences at once."""
        s = {**self.settings, **(self.judge_settings if judge else {})}
        tp = int(s.get("tensor_parallel_size", 1))
        if judge and self.multi_gpu:
            tp = max(2, gpus)
        if self.min_gb == 0:  # CPU: vLLM's KV cache is VLLM_CPU_KVCACHE_SPACE GiB
            budget, kv_gb = None, float(os.environ.get("VLLM_CPU_KVCACHE_SPACE") or 1)
        else:
            budget = self.min_gb * tp * float(s.get("gpu_memory_utilization", 0.9))
            kv_gb = budget - model.weights_gb() - OVERHEAD_GB * tp
        per_token = model.kv_bytes_per_token()
        tokens = max(0.0, kv_gb) * GIB / per_token
        max_len = int(s.get("max_model_len", 2048))
        return {
            "weights_gb": round(model.weights_gb(), 2),
            "budget_gb": round(budget, 1) if budget is not None else 0.0,
            "kv_gb": round(kv_gb, 2),
            "kv_kb_per_token": round(per_token / 1024, 1),
            "kv_tokens": int(tokens),
            "max_model_len": max_len,
            "full_sequences": round(tokens / max_len, 1),
            "tensor_parallel": tp,
        }


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "cpu",
            "no GPU (vLLM's CPU build)",
            0,
            0,
            SMOLLM2_135M,
            QWEN_05B,
            {"max_model_len": 2048},
            note="KV cache: VLLM_CPU_KVCACHE_SPACE GiB (1 unless set); expect tens of tokens/s per core",
        ),
        Profile(
            "gpu-under-8gb",
            "one GPU with less than 8 GB (computed at 6 GB)",
            6,
            8,
            QWEN_15B,
            QWEN_3B_AWQ,
            {"dtype": "float16", "max_model_len": 4096, "gpu_memory_utilization": 0.85},
            note="float16: cards of this size are often pre-Ampere, without bfloat16",
        ),
        Profile(
            "gpu-8-24gb",
            "one GPU with 8 to 24 GB",
            8,
            24,
            QWEN_7B_AWQ,
            QWEN_7B_AWQ,
            {"dtype": "float16", "max_model_len": 8192, "gpu_memory_utilization": 0.9},
            note="one model for both roles (one load); AWQ kernels want float16",
        ),
        Profile(
            "gpu-24-80gb",
            "one GPU with 24 to 80 GB",
            24,
            80,
            QWEN_14B_AWQ,
            QWEN_32B_AWQ,
            {"dtype": "float16", "max_model_len": 8192, "gpu_memory_utilization": 0.92},
            {"max_model_len": 4096},
            note="the 32B judge leaves ~3 GiB of KV cache on 24 GiB (hence max_model_len 4096); "
            "40-80 GB cards give both roles room",
        ),
        Profile(
            "multi-gpu",
            "two or more GPUs with at least 24 GB each",
            24,
            None,
            QWEN_14B_AWQ,
            QWEN_72B_AWQ,
            {"dtype": "float16", "max_model_len": 8192, "gpu_memory_utilization": 0.92},
            {"max_model_len": 4096},
            multi_gpu=True,
            note="generator: one replica per GPU (data parallel, the most tokens/s); judge: tensor "
            "parallel over the GPUs (needs >= 4 x 24 GB or 2 x 40 GB)",
        ),
    )
}


@dataclass(frozen=True)
class Machine:
    """What ``detect`` found: GPU memory in GiB per visible GPU, and how it knows."""

    gpus_gb: tuple[float, ...]
    source: str

    @property
    def profile(self) -> str:
        return classify(self.gpus_gb)


def classify(gpus_gb: tuple[float, ...] | list[float]) -> str:
    """The profile for GPUs of these sizes (GiB). Boundaries sit a little under the marketing
    sizes (a "24 GB" A10G reports 22.5 GiB, an "8 GB" card ~7.8 GiB)."""
    if not gpus_gb:
        return "cpu"
    smallest = min(gpus_gb)
    if len(gpus_gb) >= 2 and smallest >= 22:
        return "multi-gpu"
    if smallest < 3.5:
        return "cpu"  # too small for any of the presets' models: better on the CPU build
    if smallest < 7.5:
        return "gpu-under-8gb"
    if smallest < 22:
        return "gpu-8-24gb"
    return "gpu-24-80gb"


def detect() -> Machine:
    """GPU memory from ``nvidia-smi`` (honouring CUDA_VISIBLE_DEVICES), else from torch.cuda
    if torch is already imported (importing it only to look would cost seconds), else none."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            sizes = [float(line) / 1024 for line in out.split() if line.strip()]
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if visible is not None:
                idx = [int(i) for i in visible.split(",") if i.strip().isdigit()]
                sizes = [sizes[i] for i in idx if i < len(sizes)]
            return Machine(tuple(round(s, 1) for s in sizes), "nvidia-smi")
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                n = torch.cuda.device_count()
                sizes = [torch.cuda.get_device_properties(i).total_memory / GIB for i in range(n)]
                return Machine(tuple(round(s, 1) for s in sizes), "torch.cuda")
        except Exception:  # a broken CUDA install must not stop a CPU run  # noqa: BLE001
            pass
    return Machine((), "no nvidia-smi, torch not loaded: no GPU seen")


def resolve(name: str) -> tuple[Profile, Machine]:
    """The profile called ``name`` (``auto``: this machine's class) and the machine seen.
    Unknown name: ValueError with the known names and a did-you-mean."""
    machine = detect()
    key = machine.profile if name == "auto" else name
    if key not in PROFILES:
        from fms_dgt.registry import did_you_mean

        hint = did_you_mean(name, [*PROFILES, "auto"])
        raise ValueError(
            f"unknown hardware profile '{name}'"
            + (f" ({hint})" if hint else "")
            + f"; profiles: {', '.join(PROFILES)}, auto"
        )
    return PROFILES[key], machine


def profile_engine(name: str, engine_type: str | None = None) -> dict[str, Any]:
    """The engine override of profile ``name`` for ``--engine`` ``engine_type`` (None or
    ``vllm``: in-process; ``vllm-server``: the same settings as server arguments). Errors are
    ConfigErrors located at ``--profile`` (exit 2)."""
    from fms_dgt.errors import ConfigError

    try:
        profile, machine = resolve(name)
    except ValueError as exc:
        raise ConfigError(str(exc), field="--profile", hint="python -m fms_dgt.run --list-profiles") from None
    spec = profile.engine(gpus=len(machine.gpus_gb))
    if engine_type in (None, "vllm"):
        return spec
    if engine_type == "vllm-server":
        args: list[str] = []
        for key in ("dtype", "gpu_memory_utilization", "tensor_parallel_size"):
            if key in spec:
                args += ["--" + key.replace("_", "-"), str(spec.pop(key))]
        for key, value in (spec.pop("engine_args", None) or {}).items():
            args += ["--" + key.replace("_", "-"), str(value)]
        return {**spec, "type": "vllm-server", **({"server_args": args} if args else {})}
    raise ConfigError(
        f"--profile {name} sets vLLM settings (model, dtype, max_model_len, GPU memory), which "
        f"--engine {engine_type} does not take",
        field="--profile",
        hint="use --profile with --engine vllm (the default) or vllm-server, or drop --profile",
    )


def render(machine: Machine | None = None) -> str:
    """The ``--list-profiles`` text: every preset with its memory arithmetic."""
    machine = machine or detect()
    gpus = ", ".join(f"{g:g} GiB" for g in machine.gpus_gb) or "none"
    lines = [f"this machine: GPUs {gpus} ({machine.source}) -> profile '{machine.profile}'", ""]
    for p in PROFILES.values():
        mark = "  <- this machine" if p.name == machine.profile else ""
        lines.append(f"{p.name}: {p.machine}{mark}")
        n = max(2, len(machine.gpus_gb))
        settings = ", ".join(f"{k}={v}" for k, v in p.engine(n).items() if k not in ("type", "model"))
        lines.append(f"  engine      vllm, {settings}")
        for role, model in (("generator", p.generator), ("judge", p.judge)):
            f = p.fit(model, judge=role == "judge", gpus=n)
            where = "CPU" if p.min_gb == 0 else f"{p.min_gb:g} GiB x {f['tensor_parallel']}"
            lines.append(
                f"  {role:<10}  {model.name or model.label}: weights {f['weights_gb']} GiB; KV "
                f"{f['kv_kb_per_token']} KiB/token -> {f['kv_gb']} GiB left at {where} = "
                f"{f['kv_tokens']:,} tokens ({f['full_sequences']} x {f['max_model_len']})"
            )
        if p.note:
            lines.append(f"  note        {p.note}")
        lines.append("")
    lines.append(
        "use: python -m fms_dgt.run --profile NAME (or auto) ...; docs/engines.md, 'Hardware profiles'"
    )
    return "\n".join(lines)
