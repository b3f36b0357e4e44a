"""Target 5, in-process vLLM: the framework adds (almost) nothing to vLLM's own throughput.

Same model (the embedded default, SmolLM2-135M-Instruct, or ``--model``), same engine
arguments (taken from ``VLLMEngine`` itself), same 64 chat prompts, greedy decoding and the
same ``max_tokens``, so both sides generate the same tokens:

* **direct**: a script that creates ``AsyncLLM`` and submits every prompt at once;
* **framework**: ``python -m fms_dgt.run`` on ``bench/tasks/bench_vllm`` (builder
  ``bench_prompts`` with a validator, exact dedup and the jsonl datastore).

Both do one warm-up request first and time from the first request sent to the last answer,
so model loading is excluded. ``ratio = framework tokens/s ÷ direct tokens/s`` (>= 0.95).
Each side runs in its own process (vLLM on CPU needs the spawn start method and a whole
process per loaded model). Works unchanged on a GPU machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MAX_TOKENS = 64
# greedy: both sides generate the same tokens without per-request seeds (vLLM 0.32 on CPU
# crashes its engine core on seeded requests whose prefill is chunked: "CPU Generator does
# not use offset")
TEMPERATURE = 0.0
WARMUP_PROMPT = "Say hello."
_TOPICS = [
    "a lighthouse keeper",
    "a lost umbrella",
    "the first snow",
    "a clockmaker",
    "a desert well",
    "a city at night",
    "a paper boat",
    "an old violin",
]
_STYLES = ["a short story", "a poem", "a letter", "a news report", "a diary entry", "a fable", "a dialogue"]
PROMPTS = [f"Write {_STYLES[i % 7]} about {_TOPICS[i % 8]} (variation {i})." for i in range(64)]


# ---- the direct side (runs in a child process) ------------------------------------------
async def _direct(repeats: int, max_model_len: int) -> list[dict[str, float]]:
    from fms_dgt.engines.default_model import resolve_default_model
    from fms_dgt.engines.vllm_engine import VLLMEngine, on_cpu, prepare_cpu_env

    cpu = on_cpu()
    if cpu:
        prepare_cpu_env()
    from vllm import SamplingParams
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.sampling_params import RequestOutputKind
    from vllm.v1.engine.async_llm import AsyncLLM

    args = VLLMEngine(max_model_len=max_model_len)._engine_args(resolve_default_model(), cpu)
    llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**args))
    tokenizer = llm.get_tokenizer()

    async def one(prompt: str, seed: int | None, max_tokens: int, temperature: float) -> int:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer.encode(text, add_special_tokens=False)
        params = SamplingParams(n=1, max_tokens=max_tokens, temperature=temperature, top_p=1.0, seed=seed)
        params.output_kind = RequestOutputKind.FINAL_ONLY
        final = None
        async for out in llm.generate({"prompt_token_ids": ids}, params, request_id=f"r{time.time_ns()}"):
            final = out
        return sum(len(o.token_ids) for o in final.outputs) if final else 0

    try:
        await one(WARMUP_PROMPT, None, 8, 0.0)
        runs = []
        for _ in range(repeats):
            t0 = time.time()
            tokens = await asyncio.gather(*(one(p, None, MAX_TOKENS, TEMPERATURE) for p in PROMPTS))
            elapsed = time.time() - t0
            runs.append({"tokens": sum(tokens), "seconds": elapsed, "tok_s": sum(tokens) / elapsed})
        return runs
    finally:
        llm.shutdown()
        llm = None  # drop it now so vLLM's own __del__ runs here, not during interpreter teardown
        gc.collect()


def measure_direct(repeats: int, max_model_len: int = 1024) -> list[dict[str, float]]:
    from bench.harness import run_measured

    res = run_measured(
        [sys.executable, "-m", "bench.vllm_inprocess", "--direct", "--repeats", str(repeats)], timeout=1800
    )
    if res.returncode != 0:
        raise RuntimeError(f"direct vLLM run failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---- the framework side -----------------------------------------------------------------
def measure_framework(repeats: int) -> list[dict[str, float]]:
    from bench.harness import REPO, run_measured

    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="dgt-bench-") as out:
            cmd = [
                sys.executable,
                "-m",
                "fms_dgt.run",
                "--task-paths",
                str(REPO / "bench" / "tasks" / "bench_vllm" / "task.yaml"),
                "--builder-paths",
                str(REPO / "bench" / "builders"),
                "--output-dir",
                out,
                "--no-progress",
            ]
            res = run_measured(cmd, timeout=1800)
            data = Path(out) / "bench_vllm" / "data.jsonl"
            if res.returncode != 0 or not data.exists():
                raise RuntimeError(f"framework vLLM run failed:\n{res.stderr[-3000:]}")
            lineage = [json.loads(line)["lineage"] for line in data.open()]
        tokens = sum(x["completion_tokens"] for x in lineage)
        elapsed = max(x["done"] for x in lineage) - min(x["sent"] for x in lineage)
        runs.append({"tokens": tokens, "seconds": elapsed, "tok_s": tokens / elapsed, "wall": res.wall})
    return runs


def run(repeats: int = 3) -> dict[str, Any]:
    """Alternate direct and framework runs, so that load from other processes on a shared
    machine hits both sides alike; the figure is the median of the per-pair ratios."""
    direct, framework = [], []
    for _ in range(repeats):
        direct += measure_direct(1)
        framework += measure_framework(1)
    ratios = [f["tok_s"] / d["tok_s"] for d, f in zip(direct, framework)]
    ratio = statistics.median(ratios)
    return {
        "direct": direct,
        "framework": framework,
        "ratios": ratios,
        "direct_tok_s": statistics.median(r["tok_s"] for r in direct),
        "framework_tok_s": statistics.median(r["tok_s"] for r in framework),
        "ratio": ratio,
        "pass": ratio >= 0.95,
    }


def report(s: dict[str, Any]) -> None:
    from bench.harness import print_table, verdict

    rows = [
        (f"direct {i + 1}", f"{r['tokens']} tokens in {r['seconds']:.2f}s = {r['tok_s']:.0f} tok/s")
        for i, r in enumerate(s["direct"])
    ]
    rows += [
        (
            f"framework {i + 1}",
            f"{r['tokens']} tokens in {r['seconds']:.2f}s = {r['tok_s']:.0f} tok/s "
            f"(CLI wall {r['wall']:.1f}s incl. load)",
        )
        for i, r in enumerate(s["framework"])
    ]
    rows.append(("pair ratios", ", ".join(f"{r:.3f}" for r in s["ratios"])))
    rows.append(
        (
            "median",
            f"ratio {s['ratio']:.3f} (target >= 0.95) {verdict(s['pass'])}; framework "
            f"{s['framework_tok_s']:.0f} tok/s, direct {s['direct_tok_s']:.0f} tok/s",
        )
    )
    print_table(f"in-process vLLM: {len(PROMPTS)} prompts x max {MAX_TOKENS} tokens", rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.vllm_inprocess", description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--direct", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.direct:
        print(json.dumps(asyncio.run(_direct(a.repeats, 1024))))
        return 0
    s = run(a.repeats)
    report(s)
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
