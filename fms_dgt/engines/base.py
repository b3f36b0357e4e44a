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
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Protocol

from fms_dgt.engines.structured import check_structured
from fms_dgt.engines.types import (
    Constraint,
    EngineStats,
    LMRequest,
    LMResult,
    SamplingOptions,
    SamplingParams,
)
from fms_dgt.errors import ConfigError, EngineError, EngineStartError, FatalEngineError, RetryableEngineError

log = logging.getLogger("fms_dgt.engines")


class ResultSink(Protocol):
    """Receives every finished request so the running task can count tokens and store
    failures. Set with ``use_sink`` around builder calls."""

    def on_result(self, engine: Engine, request: LMRequest, result: LMResult) -> None: ...


_SINK: contextvars.ContextVar[ResultSink | None] = contextvars.ContextVar("dgt_sink", default=None)


@contextlib.contextmanager
def use_sink(sink: ResultSink | None) -> Iterator[None]:
    """Route results of requests made in this context (and threads it starts with
    ``contextvars.copy_context``/``asyncio.to_thread``) to ``sink``."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


class _LoopThread:
    """A private event loop in a daemon thread, for engines used outside any running loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dgt-engine-loop", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class Engine(ABC):
    """Base of all LLM engines. Keyword arguments are what a builder YAML block sets."""

    kind: ClassVar[str] = "engine"

    def __init__(
        self,
        model: str | None = None,
        *,
        name: str | None = None,
        max_concurrency: int = 32,
        max_retries: int = 4,
        timeout: float = 120.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_parse_retries: int = 2,
        cache: bool | str = False,
        sampling: SamplingOptions | None = None,
        **unused: Any,
    ) -> None:
        if unused:
            raise TypeError(f"unexpected engine arguments: {', '.join(sorted(unused))}")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.model = model or ""
        self.name = name or self.kind
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_parse_retries = max_parse_retries
        self.default_params = SamplingParams(**(sampling or {}))
        self.stats = EngineStats()
        self._cache_setting = cache
        self._cache: Any = None
        self._occurrences: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._own_loop: _LoopThread | None = None
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
        """Run ``request`` with retries; never raises for model failures (see ``LMResult.error``)."""
        sink = _SINK.get()
        loop = asyncio.get_running_loop()
        self._bind(loop)
        if loop is not self._loop:
            fut = asyncio.run_coroutine_threadsafe(self._run(request, sink), self._loop)  # type: ignore[arg-type]
            return await asyncio.wrap_future(fut)
        return await self._run(request, sink)

    def generate(self, request: LMRequest) -> LMResult:
        """Blocking form of ``agenerate`` for plain builders running in worker threads."""
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
        return {"name": self.name, "kind": self.kind, "model": self.model}

    # ---- internals --------------------------------------------------------------------
    def _private_loop(self) -> asyncio.AbstractEventLoop:
        with self._bind_lock:
            if self._own_loop is None:
                self._own_loop = _LoopThread()
                self._loop = None
            loop = self._own_loop.loop
            if self._loop is not loop:
                self._loop = loop
                self._sem = None
                self._started = False
                self._start_lock = None  # asyncio primitives belong to the loop that made them
            return loop

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._bind_lock:
            if self._loop is None or self._loop.is_closed() or not self._loop.is_running():
                self._loop = loop
                self._sem = None
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

                    self._cache = ResponseCache.open(self._cache_setting)
                self._started = True

    def _cache_key(self, request: LMRequest) -> str:
        base = request.cache_key(self.kind, self.model)
        # the k-th identical request of a run is sample k: repeats are not collapsed
        index = self._occurrences.get(base, 0)
        self._occurrences[base] = index + 1
        return f"{base}:{index}"

    async def _run(self, request: LMRequest, sink: ResultSink | None) -> LMResult:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_concurrency)
        await self._ensure_started()
        key = self._cache_key(request) if self._cache is not None else None
        if key is not None:
            hit = self._cache.get(key)
            if hit is not None:
                self.stats.cached += 1
                hit.cached = True
                if sink is not None:
                    sink.on_result(self, request, hit)
                return hit
        result = await self._attempts(request)
        self.stats.requests += 1
        self.stats.prompt_tokens += result.prompt_tokens
        self.stats.completion_tokens += result.completion_tokens
        if not result.ok:
            self.stats.failed += 1
            log.debug("%s: request failed after %d attempts: %s", self.name, result.attempts, result.error)
        elif key is not None:
            self._cache.put(key, result)
        if sink is not None:
            sink.on_result(self, request, result)
        return result

    async def _attempts(self, request: LMRequest) -> LMResult:
        """Send ``request`` until it succeeds or its budgets run out.

        Two budgets: transport failures (errors, timeouts) up to ``max_retries``, with
        backoff; structured output that does not parse or validate up to
        ``max_parse_retries``, resent at once. ``attempts`` on the result counts every
        request sent, so a failed record says how often the model was really asked."""
        sent = transport_failures = parse_failures = 0
        prompt_tokens = completion_tokens = 0
        while True:
            sent += 1
            try:
                async with self._sem:  # type: ignore[union-attr]
                    result = await asyncio.wait_for(self._generate_once(request), self.timeout)
            except asyncio.TimeoutError:
                error: EngineError = RetryableEngineError(f"timed out after {self.timeout:g}s")
            except FatalEngineError as exc:
                return LMResult(
                    error=f"{type(exc).__name__}: {exc}",
                    attempts=sent,
                    model=self.model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                )
            except RetryableEngineError as exc:
                error = exc
            else:
                prompt_tokens += result.prompt_tokens
                completion_tokens += result.completion_tokens
                problem = self._check_structured(request.constraint, result)
                if problem is None:
                    result.attempts = sent
                    result.prompt_tokens, result.completion_tokens = prompt_tokens, completion_tokens
                    result.model = result.model or self.model
                    return result
                parse_failures += 1
                if parse_failures > self.max_parse_retries:
                    return LMResult(
                        error=f"invalid structured output: {problem}",
                        attempts=sent,
                        texts=[],
                        model=self.model,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                    )
                self.stats.retries += 1  # resent at once: the server answered, the output was off
                continue
            transport_failures += 1
            if transport_failures > self.max_retries:
                return LMResult(
                    error=f"{type(error).__name__}: {error}",
                    attempts=sent,
                    model=self.model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                )
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(transport_failures, error.retry_after))

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay *= random.uniform(0.5, 1.0)  # full jitter keeps retries from arriving in lockstep
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max * 4))
        return delay

    @staticmethod
    def _check_structured(constraint: Constraint | None, result: LMResult) -> str | None:
        """Parse and validate constrained output; returns a problem description or None."""
        return check_structured(constraint, result)
