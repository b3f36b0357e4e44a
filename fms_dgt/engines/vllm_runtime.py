"""Loaded vLLM models for the in-process ``vllm`` engine.

A loaded model is vLLM's ``AsyncLLM`` on its own event-loop thread (it binds its sockets to
the loop it is created on, while callers come from any thread and loop). Its engine core
(scheduler and model) runs in a child process, so the front end's work (tokenising,
detokenising, grammar bookkeeping, our own pipeline) overlaps the model's steps. On this
project's 2-core CPU machine that beat an in-process ``LLMEngine`` stepped by a thread (what
offline ``vllm.LLM`` does) by 1.2-1.3x in tokens/s on the quickstart's workload
(``bench.vllm_workload``; figures in docs/benchmarks.md), so there is one runtime, not two.

Runtimes are shared by reference count: engines with the same model folder and engine
arguments use one loaded model (and one KV cache), and the last one to close shuts it down.
Cancelling a caller's ``generate`` aborts the request inside vLLM.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import uuid
from typing import Any

from fms_dgt.engines.types import LMRequest
from fms_dgt.errors import FatalEngineError

log = logging.getLogger("fms_dgt.engines.vllm")

_RUNTIMES: dict[tuple[str, str], Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def engine_kwargs(engine_args: dict[str, Any]) -> dict[str, Any]:
    """``engine_args`` as vLLM's argument classes take them (plain YAML data → config objects)."""
    kwargs = dict(engine_args)
    structured = kwargs.get("structured_outputs_config")
    if isinstance(structured, dict):  # plain data in YAML and in the runtime table's key
        from vllm.config import StructuredOutputsConfig

        kwargs["structured_outputs_config"] = StructuredOutputsConfig(**structured)
    return kwargs


def prompt_ids(tokenizer: Any, request: LMRequest) -> list[int]:
    """Token ids of a request: chat messages through the model's template, else the prompt."""
    if request.messages is not None:
        text = tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
        return list(tokenizer.encode(text, add_special_tokens=False))
    return list(tokenizer.encode(request.prompt))


class Runtime:
    """One loaded model; subclasses say how requests reach it."""

    def __init__(self, key: tuple[str, str], engine_args: dict[str, Any]) -> None:
        self.key = key
        self.engine_args = engine_args
        self.refs = 0
        self.tokenizer: Any = None
        self.max_model_len = int(engine_args.get("max_model_len") or 0)
        self.ready: concurrent.futures.Future[None] = concurrent.futures.Future()

    def _ids_and_room(self, request: LMRequest, params: Any) -> list[int]:
        """Tokenise, refuse a prompt that leaves no room, cap ``max_tokens`` to what is left."""
        from vllm.sampling_params import RequestOutputKind

        ids = prompt_ids(self.tokenizer, request)
        room = self.max_model_len - len(ids)
        if room <= 0:
            raise FatalEngineError(
                f"prompt has {len(ids)} tokens; the model's max_model_len is {self.max_model_len}"
            )
        params.max_tokens = min(params.max_tokens, room)
        params.output_kind = RequestOutputKind.FINAL_ONLY
        return ids

    async def generate(self, request: LMRequest, params: Any) -> tuple[int, Any]:
        """Generate for ``request``; returns (prompt token count, vLLM ``RequestOutput``)."""
        raise NotImplementedError

    def in_flight(self) -> int:
        """Requests vLLM is working on now."""
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError


class AsyncRuntime(Runtime):
    """``AsyncLLM`` on a dedicated event-loop thread (it binds its sockets to the loop it is
    created on, while callers come from any loop)."""

    def __init__(self, key: tuple[str, str], engine_args: dict[str, Any]) -> None:
        super().__init__(key, engine_args)
        self.llm: Any = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dgt-vllm-loop", daemon=True)
        self.thread.start()
        self.ready = asyncio.run_coroutine_threadsafe(self._load(), self.loop)

    async def _load(self) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_kwargs(self.engine_args)))
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = int(self.llm.model_config.max_model_len)

    async def run(self, request: LMRequest, params: Any) -> tuple[int, Any]:
        """Runs on the runtime's loop: tokenise and generate."""
        ids = self._ids_and_room(request, params)
        final = None
        async for out in self.llm.generate({"prompt_token_ids": ids}, params, request_id=uuid.uuid4().hex):
            final = out
        return len(ids), final

    async def generate(self, request: LMRequest, params: Any) -> tuple[int, Any]:
        future = asyncio.run_coroutine_threadsafe(self.run(request, params), self.loop)
        return await asyncio.wrap_future(future)

    def in_flight(self) -> int:
        llm = self.llm
        return 0 if llm is None else int(llm.output_processor.get_num_unfinished_requests())

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


def acquire(key: tuple[str, str], engine_args: dict[str, Any]) -> Runtime:
    """The loaded runtime for ``key`` (loading it in the background if new), one more reference."""
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            runtime = _RUNTIMES[key] = AsyncRuntime(key, engine_args)
        runtime.refs += 1
        return runtime


def forget(runtime: Runtime) -> None:
    """Drop a runtime that failed to load from the table, so a later attempt loads afresh."""
    with _RUNTIMES_LOCK:
        if _RUNTIMES.get(runtime.key) is runtime:
            del _RUNTIMES[runtime.key]


def release(runtime: Runtime) -> None:
    """One reference less; the last one shuts the model down."""
    with _RUNTIMES_LOCK:
        runtime.refs -= 1
        if runtime.refs > 0:
            return
        if _RUNTIMES.get(runtime.key) is runtime:
            del _RUNTIMES[runtime.key]
    runtime.shutdown()


@atexit.register
def _shutdown_all() -> None:
    """Stop models nobody closed, so no engine-core process outlives the run."""
    with _RUNTIMES_LOCK:
        leftovers = list(_RUNTIMES.values())
        _RUNTIMES.clear()
    for runtime in leftovers:
        runtime.shutdown()
