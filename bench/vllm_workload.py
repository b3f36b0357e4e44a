"""Issue 14 item 7: the quickstart's real workload, framework versus the fastest direct way.

``bench.vllm_inprocess`` (target 5) compares the framework with ``AsyncLLM`` on greedy,
unconstrained prompts. This one runs what a new user runs first: the example task
``tasks/core/simple/logical_reasoning/causal`` (the ``simple`` builder, its JSON-schema
constraint, temperature 0.8, its filters and stores), and replays the very requests the
framework sent (same chat messages, sampling parameters and schema, captured on the way
into vLLM) through the two direct ways vLLM offers, at most ``WIDTH`` in flight as the
framework's engine admits them:

* **offline**: ``LLMEngine`` without multiprocessing (what ``vllm.LLM`` uses), in this
  process, a new request added as one finishes, ``step()`` until done;
* **async**: ``AsyncLLM`` (engine core in a child process, talked to over ZMQ).

Reported per side: generated tokens/s and decode steps/s, both from vLLM's own per-step
statistics (a stat logger on every engine), so the three sides are counted alike, including
the tokens of requests the framework cancels once its target is reached; from first request
to last answer, model loading excluded. Sampling is random at temperature 0.8, so the sides
generate different tokens: rates, not wall times, are compared. The verdict is the median over
rounds of ``framework tokens/s ÷ the faster direct side's tokens/s`` (target >= 0.9).
Rounds alternate the order of the sides; a round during which other processes took more
than ``QUIET_CORES`` cores is shown, not counted, and repeated. Runs in a spawned child
(vLLM on CPU needs the spawn start method).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TASK = Path("tasks/core/simple/logical_reasoning/causal")
QUIET_CORES = 0.3
MAX_ATTEMPTS_FACTOR = 3
# requests in flight on the direct sides: what the example's engine admits (simple.yaml's
# max_concurrency and the runner's max_concurrent_calls are both 32)
WIDTH = 32
TARGET = 0.9


def _framework_pass(repo: Path, requests: list[Any]) -> dict[str, Any]:
    """One CLI run of the example task in this process, its requests captured on their way into vLLM."""
    from fms_dgt.engines import vllm_runtime
    from fms_dgt.run import main

    seen: list[Any] = []
    span: list[float] = []
    cls = vllm_runtime.AsyncRuntime
    original = cls.generate

    async def spy(self: Any, request: Any, params: Any) -> Any:
        seen.append((request.messages, request.prompt, params.clone()))
        span.append(time.time())
        try:
            return await original(self, request, params)
        finally:
            span.append(time.time())

    cls.generate = spy  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory(prefix="dgt-bench-") as out:
            argv = ["--task-paths", str(repo / TASK), "--output-dir", out, "--no-progress"]
            status = main(argv)
            results = list(Path(out).rglob("task_results.json"))
            data = list(Path(out).rglob("data.jsonl"))
            if status != 0 or not results or not data:
                raise RuntimeError(f"framework run failed with status {status}")
            engines = json.loads(results[0].read_text())["engines"]
    finally:
        cls.generate = original  # type: ignore[method-assign]
    requests[:] = seen
    kept = sum(e["completion_tokens"] for e in engines.values())
    elapsed = max(span) - min(span)  # first request sent to last answer, as on the direct sides
    return {"requests": len(seen), "answered_tokens": kept, "seconds": elapsed}


def _token_ids(tokenizer: Any, messages: Any, prompt: Any) -> list[int]:
    if messages is not None:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(tokenizer.encode(text, add_special_tokens=False))
    return list(tokenizer.encode(prompt))


def _offline_pass(engine: Any, requests: list[Any], width: int) -> dict[str, Any]:
    """The requests through an in-process LLMEngine, at most ``width`` at a time (a new one
    joins as one finishes, as the framework's engine admits them), stepped until done."""
    from vllm.sampling_params import RequestOutputKind

    tokenizer = engine.get_tokenizer()
    t0 = time.time()
    waiting = list(enumerate(requests))
    running = 0
    while waiting or engine.has_unfinished_requests():
        while waiting and running < width:
            i, (messages, prompt, params) = waiting.pop(0)
            p = params.clone()
            p.output_kind = RequestOutputKind.FINAL_ONLY
            engine.add_request(
                f"off-{t0}-{i}", {"prompt_token_ids": _token_ids(tokenizer, messages, prompt)}, p
            )
            running += 1
        running -= sum(1 for o in engine.step() if o.finished)
    return {"seconds": time.time() - t0}


async def _async_pass(llm: Any, tokenizer: Any, requests: list[Any], width: int) -> dict[str, Any]:
    from vllm.sampling_params import RequestOutputKind

    gate = asyncio.Semaphore(width)

    async def one(i: int, messages: Any, prompt: Any, params: Any) -> None:
        p = params.clone()
        p.output_kind = RequestOutputKind.FINAL_ONLY
        async with gate:
            ids = _token_ids(tokenizer, messages, prompt)
            async for _ in llm.generate({"prompt_token_ids": ids}, p, request_id=f"a{time.time_ns()}-{i}"):
                pass

    t0 = time.time()
    await asyncio.gather(*(one(i, *r) for i, r in enumerate(requests)))
    return {"seconds": time.time() - t0}


def _engine_args() -> dict[str, Any]:
    """The settings the example task's engine uses (the default model on CPU)."""
    from fms_dgt.engines.default_model import resolve_model
    from fms_dgt.engines.vllm_engine import VLLMEngine, on_cpu

    return VLLMEngine()._engine_args(resolve_model(None), on_cpu())


def _counting_stats() -> list[Any]:
    """Make every vLLM engine created from now on count its decode steps and generated tokens
    (vLLM's own per-step statistics, so all three sides are counted the same way, including
    tokens of requests the framework cancels once its target is reached). Returns the list of
    counters, one per engine, in creation order."""
    from vllm.v1.engine.async_llm import AsyncLLM
    from vllm.v1.engine.llm_engine import LLMEngine
    from vllm.v1.metrics.loggers import StatLoggerBase

    counters: list[Any] = []

    class Counter(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            self.tokens = self.steps = 0
            counters.append(self)

        def record(self, scheduler_stats: Any, iteration_stats: Any, *a: Any, **k: Any) -> None:
            if iteration_stats is not None and iteration_stats.num_generation_tokens > 0:
                self.steps += 1
                self.tokens += iteration_stats.num_generation_tokens

        def log_engine_initialized(self) -> None:
            pass

    for cls in (LLMEngine, AsyncLLM):
        original = cls.from_engine_args.__func__  # type: ignore[attr-defined]

        def counted(klass: Any, engine_args: Any, *a: Any, _original: Any = original, **k: Any) -> Any:
            engine_args.disable_log_stats = False
            k["stat_loggers"] = [Counter]
            return _original(klass, engine_args, *a, **k)

        cls.from_engine_args = classmethod(counted)  # type: ignore[method-assign, assignment]
    return counters


def measure(rounds: int) -> dict[str, Any]:
    """Runs in the child: one model per side, loaded once; rounds alternate the order."""
    from vllm.config import StructuredOutputsConfig
    from vllm.engine.arg_utils import AsyncEngineArgs, EngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM
    from vllm.v1.engine.llm_engine import LLMEngine

    from bench.harness import REPO, cpu_snapshot, foreign_cores
    from fms_dgt.engines.vllm_engine import VLLMEngine, prepare_cpu_env

    prepare_cpu_env()
    counters = _counting_stats()
    # holding an engine with the example's settings keeps its model loaded between the
    # framework's runs, which open and close their own engine with the same settings
    holder = VLLMEngine(name="bench_holder")
    asyncio.run_coroutine_threadsafe(holder.astart(), holder._private_loop()).result(timeout=1800)
    width = WIDTH
    args = _engine_args()
    args["structured_outputs_config"] = StructuredOutputsConfig(**args["structured_outputs_config"])
    offline = LLMEngine.from_engine_args(EngineArgs(**args), enable_multiprocessing=False)
    loop = asyncio.new_event_loop()
    llm = loop.run_until_complete(_make_async(AsyncLLM, AsyncEngineArgs(**args)))
    tokenizer = llm.get_tokenizer()
    framework_c, offline_c, async_c = counters[0], counters[1], counters[2]

    requests: list[Any] = []

    def counted(counter: Any, fn: Any) -> dict[str, Any]:
        tokens, steps = counter.tokens, counter.steps
        before = cpu_snapshot()
        out = fn()
        out["foreign_cores"] = foreign_cores(before)
        out["tokens"] = counter.tokens - tokens
        out["tok_s"] = out["tokens"] / out["seconds"]
        out["steps_s"] = (counter.steps - steps) / out["seconds"]
        return out

    sides = {
        "framework": (framework_c, lambda: _framework_pass(REPO, requests)),
        "offline": (offline_c, lambda: _offline_pass(offline, requests, width)),
        "async": (async_c, lambda: loop.run_until_complete(_async_pass(llm, tokenizer, requests, width))),
    }
    rows: list[dict[str, Any]] = []

    def note(text: str) -> None:
        print(f"[vllm_workload] {text}", file=sys.stderr, flush=True)

    try:
        for name, (_, fn) in sides.items():  # warm-up; the framework's run gives the requests
            note(f"warm-up: {name}")
            fn()
        if len(counters) != 3:  # the framework loaded a model of its own: not the holder's settings
            raise RuntimeError(f"expected 3 loaded engines, found {len(counters)}")
        for attempt in range(rounds * MAX_ATTEMPTS_FACTOR):
            if sum(r["quiet"] for r in rows) >= rounds:
                break
            row: dict[str, Any] = {}
            f_counter, f_fn = sides["framework"]
            row["framework"] = counted(f_counter, f_fn)  # first: it captures this round's requests
            order = ["offline", "async"] if attempt % 2 == 0 else ["async", "offline"]
            for name in order:
                row[name] = counted(*sides[name])
            for name in ("framework", *order):
                note(
                    f"round {attempt + 1}: {name} {row[name]['tok_s']:.0f} tok/s {row[name]['steps_s']:.1f} steps/s"
                )
            fastest = max(row["offline"]["tok_s"], row["async"]["tok_s"])
            row["ratio"] = row["framework"]["tok_s"] / fastest
            row["quiet"] = (
                max(row[k]["foreign_cores"] for k in ("framework", "offline", "async")) <= QUIET_CORES
            )
            rows.append(row)
    finally:
        llm.shutdown()
        holder.close()
    return {"rows": rows, "width": width}


async def _make_async(cls: Any, args: Any) -> Any:
    return cls.from_engine_args(args)


def run(rounds: int) -> dict[str, Any]:
    from bench.harness import run_measured

    res = run_measured(
        [sys.executable, "-m", "bench.vllm_workload", "--child", "--rounds", str(rounds)], timeout=3600
    )
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith('{"rows"')]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"vLLM workload benchmark failed (status {res.returncode}):\n{res.stderr[-3000:]}")
    rows = json.loads(lines[-1])["rows"]
    counted = [r for r in rows if r["quiet"]] or rows
    ratio = statistics.median(r["ratio"] for r in counted)
    return {
        "rows": rows,
        "quiet_rounds": sum(r["quiet"] for r in rows),
        "ratio": ratio,
        "pass": ratio >= TARGET,
    }


def _side(s: dict[str, Any]) -> str:
    steps = f", {s['steps_s']:.1f} steps/s" if "steps_s" in s else ""
    return f"{s['tokens']} tok / {s['seconds']:.2f}s = {s['tok_s']:.0f} tok/s{steps}"


def report(s: dict[str, Any]) -> None:
    from bench.harness import print_table, verdict

    rows = []
    for i, r in enumerate(s["rows"]):
        others = max(r[k]["foreign_cores"] for k in ("framework", "offline", "async"))
        rows.append(
            (
                f"round {i + 1}",
                f"framework ({r['framework']['requests']} requests) {_side(r['framework'])}; "
                f"offline LLMEngine {_side(r['offline'])}; AsyncLLM {_side(r['async'])}; "
                f"ratio {r['ratio']:.3f}; other processes {others:.2f} cores"
                + ("" if r["quiet"] else " (disturbed: not counted)"),
            )
        )
    if not s["quiet_rounds"]:
        rows.append(("warning", "no round was quiet: the median below is over disturbed rounds"))
    rows.append(
        (
            "median",
            f"framework ÷ fastest direct = {s['ratio']:.3f} over {s['quiet_rounds'] or len(s['rows'])} "
            f"rounds (target >= {TARGET}) {verdict(s['pass'])}",
        )
    )
    print_table("in-process vLLM, the quickstart's workload (simple builder, JSON schema, T=0.8)", rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.vllm_workload", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        logging.disable(logging.WARNING)
        result = measure(a.rounds)
        logging.shutdown()
        print(json.dumps(result), flush=True)
        return 0
    s = run(a.rounds)
    report(s)
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
