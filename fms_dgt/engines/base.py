"""The engine contract: the one way builders reach a model.

A subclass implements ``_generate_once`` (one attempt, raising ``RetryableEngineError`` or
``FatalEngineError``) and optionally ``_start``/``_close``. This base owns everything that
must behave the same for every backend: one concurrency limit per engine instance, the
timeout that keeps a stalled server from hanging a run, retries with jittered exponential
backoff honouring Retry-After, structured-output validation, the optional response cache,
usage accounting, and turning a request that never succeeded into a recorded failure
(never a silent ``None``).

Async inside. Plain (sync) builders run in worker threads and call ``generate``; it hands the
request to the event loop the engine is bound to, so async and sync callers share one
semaphore and one continuous batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Protocol

from fms_dgt.engines.admission import Admission
from fms_dgt.engines.cache import CachedResponses
from fms_dgt.engines.concurrency import InFlightLimit
from fms_dgt.engines.loop import LoopThread
from fms_dgt.engines.pricing import Pricing, price_for, result_cost
from fms_dgt.engines.retry import RetryPolicy
from fms_dgt.engines.types import (
    EngineStats,
    LMRequest,
    LMResult,
    SamplingOptions,
    SamplingParams,
)
from fms_dgt.errors import ConfigError, EngineError, EngineStartError

log = logging.getLogger("fms_dgt.engines")


class ResultSink(Protocol):
    """Receives every finished request so the running task can count tokens and store
    failures. Set with ``use_sink`` around builder calls. A sink may also define
    ``before_request(engine, request)``, called before a request the cache cannot answer is
    sent; it raises to stop the request (a task whose budget is spent). And it may have a
    ``state_dir`` (the task's folder), where transports keep state that belongs to the task
    (the Batch API's job journal: ``batch/jobs.py``)."""

    def on_result(self, engine: Engine, request: LMRequest, result: LMResult) -> None: ...


_SINK: contextvars.ContextVar[ResultSink | None] = contextvars.ContextVar("dgt_sink", default=None)

DEFAULT_MAX_CONCURRENCY = 32


def current_sink() -> ResultSink | None:
    """The sink of the request being sent (set around every attempt, on the engine's loop).
    Transports that keep state per task read the task's folder from it (``state_dir``)."""
    return _SINK.get()


@contextlib.contextmanager
def use_sink(sink: ResultSink | None) -> Iterator[None]:
    """Route results of requests made in this context (and threads it starts with
    ``contextvars.copy_context``/``asyncio.to_thread``) to ``sink``."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


class Engine(ABC):
    """Base of all LLM engines. Keyword arguments are what a builder YAML block sets."""

    kind: ClassVar[str] = "engine"

    def __init__(
        self,
        model: str | None = None,
        *,
        name: str | None = None,
        max_concurrency: int | None = None,
        max_retries: int = 4,
        timeout: float = 120.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_parse_retries: int = 2,
        cache: bool | str = False,
        sampling: SamplingOptions | None = None,
        pricing: Pricing | None = None,
        **unused: Any,
    ) -> None:
        if unused:
            raise TypeError(f"unexpected engine arguments: {', '.join(sorted(unused))}")
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.model = model or ""
        self.name = name or self.kind
        # None: not set by the user (engines that adapt their concurrency choose their own
        # ceiling; the others use DEFAULT_MAX_CONCURRENCY)
        self.max_concurrency_given = max_concurrency
        self.max_concurrency = max_concurrency or DEFAULT_MAX_CONCURRENCY
        self.timeout = timeout
        self.retry = RetryPolicy(
            max_retries=max_retries,
            timeout=timeout,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_parse_retries=max_parse_retries,
        )
        self.default_params = SamplingParams(**(sampling or {}))
        self._pricing = pricing
        self.stats = EngineStats()
        self._cache_setting = cache
        self._cache: CachedResponses | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._admission: Admission | None = None
        self._own_loop: LoopThread | None = None
        self._started = False
        self._start_lock: asyncio.Lock | None = None
        self._start_error: EngineStartError | ConfigError | None = None
        self._bind_lock = threading.Lock()

    # ---- to implement -------------------------------------------------------------
    @abstractmethod
    async def _generate_once(self, request: LMRequest) -> LMResult:
        """One attempt. Raise RetryableEngineError/FatalEngineError on failure."""

    async def _start(self) -> None:
        """Load the model / start the server. Called once, on the bound loop."""

    async def _close(self) -> None:
        """Release resources. Called once, on the bound loop."""

    # ---- public API -------------------------------------------------------------------
    async def agenerate(self, request: LMRequest) -> LMResult:
        """Run ``request`` with retries; never raises for model failures (see ``LMResult.error``).
        A request without ``params`` gets this engine's configured sampling."""
        request = request.with_defaults(self.default_params)
        sink = _SINK.get()
        loop = asyncio.get_running_loop()
        self._bind(loop)
        if loop is not self._loop:
            fut = asyncio.run_coroutine_threadsafe(self._run(request, sink), self._loop)  # type: ignore[arg-type]
            return await asyncio.wrap_future(fut)
        return await self._run(request, sink)

    def generate(self, request: LMRequest) -> LMResult:
        """Blocking form of ``agenerate`` for plain builders running in worker threads."""
        request = request.with_defaults(self.default_params)
        sink = _SINK.get()
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            loop = self._private_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("Engine.generate() called on the event loop; use 'await engine.agenerate()'")
        return asyncio.run_coroutine_threadsafe(self._run(request, sink), loop).result()

    async def agenerate_batch(self, requests: Sequence[LMRequest]) -> list[LMResult]:
        """All requests concurrently (bounded by ``max_concurrency``), results in order."""
        return list(await asyncio.gather(*(self.agenerate(r) for r in requests)))

    def generate_batch(self, requests: Sequence[LMRequest]) -> list[LMResult]:
        requests = [r.with_defaults(self.default_params) for r in requests]
        loop = self._loop if self._loop and self._loop.is_running() else self._private_loop()
        sink = _SINK.get()

        async def _all() -> list[LMResult]:
            return list(await asyncio.gather(*(self._run(r, sink) for r in requests)))

        return asyncio.run_coroutine_threadsafe(_all(), loop).result()

    def chat(self, messages: list[dict[str, Any]], **params: Any) -> LMResult:
        """Convenience: one blocking chat request with sampling overrides."""
        return self.generate(LMRequest(messages=messages, params=self.default_params.merged(**params)))

    async def astart(self) -> None:
        """Start the engine now (load weights, launch servers) instead of on first request."""
        self._bind(asyncio.get_running_loop())
        await self._ensure_started()

    async def aclose(self) -> None:
        self._start_error = None  # closing and starting again is an explicit retry
        if self._started:
            self._started = False
            await self._close()
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def close(self) -> None:
        """Blocking close, safe to call from any thread and more than once."""
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout=60)
        elif self._started or self._cache is not None:
            asyncio.run(self.aclose())
        if self._own_loop is not None:
            self._own_loop.stop()
            self._own_loop = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "model": self.model}
        if self.pricing is not None:
            out["pricing"] = self.pricing.model_dump()
        return out

    # engines that send requests to a hosted provider get the known list prices of its models
    hosted: ClassVar[bool] = False

    @property
    def pricing(self) -> Pricing | None:
        """Prices per million tokens (the block's ``pricing:``, else the known list price of
        a hosted model); None: requests cost nothing."""
        return price_for(self.model, self._pricing, self.hosted)

    def cost(self, result: LMResult) -> float:
        """US dollars ``result`` cost (0 for a cached answer or a free model)."""
        return result_cost(self.pricing, result)

    async def chat_tokenizer(self) -> Any | None:
        """The model's tokenizer (``transformers``-style: ``apply_chat_template``, ``encode``,
        ``all_special_tokens``), where this engine can give one without the network; None
        where it cannot (the default). Builders that write raw prompts in the model's own
        chat format (``magpie``) read the chat template from it."""
        return None

    async def reachability_problem(self) -> str | None:
        """For ``--validate``: why the server this engine talks to cannot be used (None if
        it can, or if there is nothing to reach before the engine starts)."""
        return None

    # ---- internals --------------------------------------------------------------------
    def _private_loop(self) -> asyncio.AbstractEventLoop:
        with self._bind_lock:
            if self._own_loop is None:
                self._own_loop = LoopThread()
                self._loop = None
            loop = self._own_loop.loop
            if self._loop is not loop:
                self._loop = loop
                self._admission = None
                self._started = False
                self._start_lock = None  # asyncio primitives belong to the loop that made them
            return loop

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._bind_lock:
            if self._loop is None or self._loop.is_closed() or not self._loop.is_running():
                self._loop = loop
                self._admission = None
                self._started = False
                self._start_lock = None

    async def _ensure_started(self) -> None:
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._start_error is not None:
                raise self._start_error
            if not self._started:
                try:
                    await self._start()
                except ConfigError as exc:  # e.g. vLLM not installed: the message has the fix
                    self._start_error = exc
                    raise
                except Exception as exc:
                    # remembered: callers waiting on the lock fail now instead of each
                    # relaunching a model or server that cannot start
                    detail = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
                    self._start_error = EngineStartError(f"engine '{self.name}' could not start: {detail}")
                    raise self._start_error from exc
                if self._cache_setting and self._cache is None:
                    from fms_dgt.engines.cache import ResponseCache

                    self._cache = CachedResponses(ResponseCache.open(self._cache_setting), self.kind)
                self._started = True

    async def _run(self, request: LMRequest, sink: ResultSink | None) -> LMResult:
        if self._admission is None:
            self._admission = self._make_admission()
        await self._ensure_started()
        cache = self._cache
        key = cache.key(request, self.model) if cache is not None else None
        if cache is not None and key is not None:
            hit = cache.get(key)
            if hit is not None:
                self.stats.cached += 1
                hit.cached = True
                if sink is not None:
                    sink.on_result(self, request, hit)
                return hit
        gate = getattr(sink, "before_request", None)
        if gate is not None:  # the task's budget: raises once it is spent, so nothing is sent
            gate(self, request)
        with use_sink(sink):  # for transports that keep state per task (current_sink)
            result = await self.retry.run(
                self._generate_once, request, model=self.model, stats=self.stats, admit=self._admission.enter
            )
        self.stats.requests += 1
        self.stats.prompt_tokens += result.prompt_tokens
        self.stats.completion_tokens += result.completion_tokens
        if not result.ok:
            self.stats.failed += 1
            log.debug("%s: request failed after %d attempts: %s", self.name, result.attempts, result.error)
        elif cache is not None and key is not None:
            cache.put(key, result)
        if sink is not None:
            sink.on_result(self, request, result)
        return result

    def _make_admission(self) -> Admission:
        """What each attempt must get before it is sent (built once per event loop): here a
        fixed limit of ``max_concurrency`` requests in flight. Engines that talk to hosted
        APIs add adaptive concurrency and rate limits (``openai``)."""
        n = self.max_concurrency
        return Admission(InFlightLimit(n, n, adaptive=False))
