"""A loopback OpenAI-compatible server that misbehaves on purpose.

Real LLM endpoints fail in ways that cannot be provoked on demand: overload (503), rate
limits (429 + Retry-After), stalls, dropped connections, garbage or truncated bodies, whole
outages. ``FaultServer`` makes each of those happen with a chosen probability (from a seeded
RNG, so a run is repeatable) or in a scripted order, and counts what it did so a test can
check the client's reaction instead of guessing.

Two modes:

* **fake** (no ``upstream``): answers ``/v1/chat/completions`` and ``/v1/completions`` itself
  with canned text (or a minimal instance of a requested JSON schema), honouring ``n``.
* **proxy** (``upstream="http://127.0.0.1:8000"``): forwards healthy requests to a real server
  (e.g. a vLLM OpenAI server) and injects faults in front of it.

Usage::

    with FaultServer(faults=Faults(p_503=0.2, p_429=0.05, seed=1)) as srv:
        engine = OpenAIEngine(base_url=srv.url, model="m")   # srv.url ends in /v1
        ...
        assert srv.counts["503"] > 0

    srv = FaultServer(script=["503", "429", "ok"]).start()   # first three requests, in order
    srv.schedule_outage(start_in=0.0, duration=10.0)          # everything fails for 10 s
    srv.stop()

    FaultServer(max_inflight=24, latency=0.05)   # a concurrency quota: 429 beyond 24 in flight

With ``max_inflight`` the server behaves like a provider with a concurrency quota: a
generation request that arrives while ``max_inflight`` requests are being answered gets a
429 (counted as ``429``, with ``Retry-After`` only if ``overload_retry_after`` is set).
``inflight_log`` records every change of the number being answered, so a test can take the
time-weighted mean over any interval (``mean_inflight``); ``usage_log`` the arrival time and
``usage.total_tokens`` (or prompt + completion) of every answer. ``GET /_records`` returns
all three logs as JSON (for a server run in another process, ``tests/support/server_process``).

The server runs its own event loop in a daemon thread. For measurements where the server's
CPU must not be counted, run it as a separate process: ``python tests/support/fault_server.py
--port 0`` prints ``READY <url>`` on stdout once it listens.

``GET .../models`` (what engines ask at start) is answered without faults and not counted.

Outcomes (the keys of ``counts``): ``ok``, ``503``, ``429``, ``stall``, ``drop``,
``invalid_json``, ``truncated``, ``outage``, and any plain HTTP status used in a script
(``"400"``, ``"401"``, ``"404"``, ...), which answers with that status and an OpenAI-style
error body. ``requests`` counts everything seen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

OK = "ok"
FAULT_ORDER = ("503", "429", "stall", "drop", "invalid_json", "truncated")

Responder = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass
class Faults:
    """Per-request fault probabilities (each in [0, 1], summing to at most 1).

    ``retry_after`` is what a 429 (and a 503 when ``retry_after_on_503``) sends: seconds, or
    the string ``"date"`` for an HTTP-date ``retry_after_seconds`` in the future.
    ``stall_seconds`` should exceed the client timeout; a stalled request is answered
    normally afterwards if the client is still waiting.
    """

    p_503: float = 0.0
    p_429: float = 0.0
    p_stall: float = 0.0
    p_drop: float = 0.0
    p_invalid_json: float = 0.0
    p_truncated: float = 0.0
    retry_after: float | str = 1.0
    retry_after_seconds: float = 1.0
    retry_after_on_503: bool = False
    stall_seconds: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        total = sum(self._probabilities())
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities sum to {total} > 1")

    def _probabilities(self) -> list[float]:
        return [self.p_503, self.p_429, self.p_stall, self.p_drop, self.p_invalid_json, self.p_truncated]


@dataclass
class _State:
    faults: Faults
    rng: random.Random
    script: list[str] = field(default_factory=list)
    outage: tuple[float, float] | None = None  # (monotonic start, monotonic end)
    counts: Counter[str] = field(default_factory=Counter)
    log: list[tuple[float, str, str]] = field(default_factory=list)  # (time, path, outcome)
    inflight: int = 0
    inflight_log: list[tuple[float, int]] = field(default_factory=list)  # (time, in flight after)
    usage_log: list[tuple[float, int]] = field(default_factory=list)  # (arrival, tokens of the answer)


def schema_instance(schema: dict[str, Any]) -> Any:
    """A small value that satisfies simple JSON schemas (what a fake model would emit)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return schema_instance(schema[key][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: schema_instance(sub) for name, sub in props.items()}
    if kind == "array":
        count = schema.get("minItems", 1)
        return [schema_instance(schema.get("items", {"type": "string"})) for _ in range(count)]
    return {"string": "x", "integer": 1, "number": 1.0, "boolean": True, "null": None}.get(kind, "x")


def canned_response(path: str, body: dict[str, Any], text: str = "Hello from the fault server.") -> dict:
    """The default fake answer: ``n`` choices of ``text`` (or schema-valid JSON), with usage."""
    n = int(body.get("n") or 1)
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        text = json.dumps(schema_instance(fmt["json_schema"].get("schema", {})))
    chat = path.endswith("chat/completions")
    choices = []
    for i in range(n):
        choice: dict[str, Any] = {"index": i, "finish_reason": "stop"}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        choices.append(choice)
    return {
        "id": "fake",
        "object": "chat.completion" if chat else "text_completion",
        "model": body.get("model", "fake"),
        "choices": choices,
        "usage": {"prompt_tokens": 5, "completion_tokens": 7 * n, "total_tokens": 5 + 7 * n},
    }


class FaultServer:
    """An OpenAI-compatible loopback server with injectable faults (see module docstring).

    Args:
        faults: probabilities of each fault for requests not covered by ``script``.
        script: outcomes for the first requests, in order (``"ok"``, ``"503"``, ``"429"``,
            ``"stall"``, ``"drop"``, ``"invalid_json"``, ``"truncated"`` or an HTTP status).
        upstream: base URL of a real server to proxy to (without ``/v1``); None = fake mode.
        responder: fake mode only; ``(path, request_json) -> response_json``.
        latency: seconds every healthy answer waits before it is sent.
        max_inflight: answer 429 to a request arriving while this many are being answered.
        overload_retry_after: the ``Retry-After`` (seconds) of those 429s; None sends none.
        host, port: where to listen; port 0 picks a free one.
    """

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        script: Iterable[str] = (),
        upstream: str | None = None,
        responder: Responder | None = None,
        latency: float = 0.0,
        max_inflight: int | None = None,
        overload_retry_after: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        faults = faults or Faults()
        self._state = _State(faults=faults, rng=random.Random(faults.seed), script=list(script))
        self.upstream = upstream.rstrip("/") if upstream else None
        self.responder = responder or canned_response
        self.latency = latency
        self.max_inflight = max_inflight
        self.overload_retry_after = overload_retry_after
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ---- control (thread-safe, callable from the test) -------------------------------
    @property
    def base_url(self) -> str:
        """``http://host:port`` (no ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI base URL clients use: ``http://host:port/v1``."""
        return self.base_url + "/v1"

    @property
    def counts(self) -> dict[str, int]:
        """A snapshot of outcomes so far, plus ``requests`` (the total)."""
        with self._lock:
            snap = dict(self._state.counts)
        snap.setdefault("requests", 0)
        return snap

    @property
    def log(self) -> list[tuple[float, str, str]]:
        """``(monotonic time, path, outcome)`` for every request seen, in arrival order."""
        with self._lock:
            return list(self._state.log)

    @property
    def usage_log(self) -> list[tuple[float, int]]:
        """``(monotonic arrival time, tokens of the answer)`` for every answer served."""
        with self._lock:
            return list(self._state.usage_log)

    @property
    def inflight_log(self) -> list[tuple[float, int]]:
        """``(monotonic time, requests being answered after the change)``."""
        with self._lock:
            return list(self._state.inflight_log)

    def mean_inflight(self, start: float, end: float) -> float:
        """Time-weighted mean of requests being answered between two monotonic times."""
        level, area, at = 0, 0.0, start
        for when, after in self.inflight_log:
            if when > end:
                break
            if when > start:
                area += level * (when - at)
                at = when
            level = after
        area += level * (end - at)
        return area / (end - start) if end > start else 0.0

    def reset(self, faults: Faults | None = None, script: Iterable[str] = ()) -> None:
        """Zero the counters and replace faults/script (the RNG restarts from the seed)."""
        with self._lock:
            faults = faults or self._state.faults
            inflight = self._state.inflight  # requests being answered stay counted
            self._state = _State(faults=faults, rng=random.Random(faults.seed), script=list(script))
            self._state.inflight = inflight

    def set_faults(self, **changes: Any) -> None:
        """Change some fault settings in place, e.g. ``set_faults(p_503=0.0)``."""
        with self._lock:
            self._state.faults = replace(self._state.faults, **changes)

    def push_script(self, *outcomes: str) -> None:
        """Append outcomes for the next requests."""
        with self._lock:
            self._state.script.extend(outcomes)

    def schedule_outage(self, start_in: float, duration: float) -> None:
        """Fail every request (503, counted as ``outage``) from ``start_in`` seconds from now
        for ``duration`` seconds."""
        start = time.monotonic() + start_in
        with self._lock:
            self._state.outage = (start, start + duration)

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> FaultServer:
        """Listen in a background thread; returns self once the port is bound."""
        self._thread = threading.Thread(target=self._thread_main, name="fault-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("fault server did not start")
        if self._error is not None:
            raise RuntimeError(f"fault server failed to start: {self._error}")
        return self

    def stop(self) -> None:
        """Stop listening and join the thread (idempotent)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        with contextlib.suppress(Exception):
            fut.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/health", self._health)
        app.router.add_get("/_records", self._records)
        # the model listing engines read at start is metadata, not a generation request: it
        # is answered (or proxied) without faults and is not counted, so scripts and counts
        # describe generation requests only
        app.router.add_get("/{prefix:.*}models", self._models)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.upstream:
            self._session = ClientSession(timeout=ClientTimeout(total=None))

    async def _shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- request handling ----------------------------------------------------------------
    def _choose(self) -> tuple[str, Faults]:
        with self._lock:
            st = self._state
            now = time.monotonic()
            if st.outage and st.outage[0] <= now < st.outage[1]:
                outcome = "outage"
            elif st.script:
                outcome = st.script.pop(0)
            else:
                outcome = OK
                draw, acc = st.rng.random(), 0.0
                for name, p in zip(FAULT_ORDER, st.faults._probabilities(), strict=True):
                    acc += p
                    if draw < acc:
                        outcome = name
                        break
            return outcome, st.faults

    def _count(self, path: str, outcome: str) -> None:
        with self._lock:
            self._state.counts["requests"] += 1
            self._state.counts[outcome] += 1
            self._state.log.append((time.monotonic(), path, outcome))

    async def _records(self, request: web.Request) -> web.Response:
        with self._lock:
            st = self._state
            return web.json_response({"log": st.log, "inflight": st.inflight_log, "usage": st.usage_log})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _models(self, request: web.Request) -> web.Response:
        status, payload, ctype = await self._answer(request, request.path, b"")
        return web.Response(status=status, body=payload, content_type=ctype)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        path = request.path
        outcome, faults = self._choose()
        if outcome == OK and self._over_limit():
            self._count(path, "429")
            retry = self.overload_retry_after
            return _error(
                429, "too many requests in flight", {} if retry is None else {"Retry-After": f"{retry:g}"}
            )
        self._count(path, outcome)
        arrival = time.monotonic()
        self._track(+1)
        try:
            response = await self._respond(request, path, raw, outcome, faults)
        finally:
            self._track(-1)
        if outcome == OK and isinstance(response, web.Response) and response.status == 200:
            self._note_usage(arrival, response.body)
        return response

    def _note_usage(self, arrival: float, body: Any) -> None:
        try:
            usage = json.loads(bytes(body)).get("usage") or {}
        except (TypeError, ValueError, AttributeError):
            return
        tokens = usage.get("total_tokens") or (
            usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
        )
        with self._lock:
            self._state.usage_log.append((arrival, int(tokens)))

    def _over_limit(self) -> bool:
        with self._lock:
            return self.max_inflight is not None and self._state.inflight >= self.max_inflight

    def _track(self, change: int) -> None:
        with self._lock:
            st = self._state
            st.inflight += change
            st.inflight_log.append((time.monotonic(), st.inflight))

    async def _respond(
        self, request: web.Request, path: str, raw: bytes, outcome: str, faults: Faults
    ) -> web.StreamResponse:
        if outcome in ("503", "outage"):
            headers = self._retry_after(faults) if faults.retry_after_on_503 and outcome == "503" else {}
            return _error(503, "server overloaded", headers)
        if outcome == "429":
            return _error(429, "rate limit reached", self._retry_after(faults))
        if outcome.isdigit():
            return _error(int(outcome), f"scripted status {outcome}")
        if outcome == "drop":
            _abort(request)
            return web.Response()  # never sent: the socket is gone
        if outcome == "stall":
            await asyncio.sleep(faults.stall_seconds)
        if self.latency:
            await asyncio.sleep(self.latency)
        status, payload, ctype = await self._answer(request, path, raw)
        if outcome == "invalid_json":
            return web.Response(body=b'{"choices": [{"text": "oops"', content_type="application/json")
        if outcome == "truncated":
            return await _truncated(request, payload)
        return web.Response(status=status, body=payload, content_type=ctype)

    async def _answer(self, request: web.Request, path: str, raw: bytes) -> tuple[int, bytes, str]:
        if self.upstream is not None:
            assert self._session is not None
            headers = {
                k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")
            }
            async with self._session.request(
                request.method, self.upstream + request.path_qs, data=raw or None, headers=headers
            ) as resp:
                body = await resp.read()
                return resp.status, body, resp.content_type or "application/json"
        if path.rstrip("/").endswith("/models"):
            return (
                200,
                json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode(),
                "application/json",
            )
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, b'{"error": {"message": "request body is not JSON"}}', "application/json"
        return 200, json.dumps(self.responder(path, body)).encode(), "application/json"

    @staticmethod
    def _retry_after(faults: Faults) -> dict[str, str]:
        if faults.retry_after == "date":
            when = time.time() + faults.retry_after_seconds
            return {"Retry-After": email.utils.formatdate(when, usegmt=True)}
        return {"Retry-After": f"{faults.retry_after:g}"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "fault_server", "code": status}}
    return web.json_response(body, status=status, headers=headers)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _truncated(request: web.Request, payload: bytes) -> web.StreamResponse:
    """Promise the full length, send half, then cut the connection."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.content_length = len(payload)
    await resp.prepare(request)
    await resp.write(payload[: max(1, len(payload) // 2)])
    _abort(request)
    return resp


def main(argv: list[str] | None = None) -> None:
    """Run a fault server in the foreground (for measurements in a separate process)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", default=None)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--max-inflight", type=int, default=None, help="429 beyond this many in flight")
    for name in ("p_503", "p_429", "p_stall", "p_drop", "p_invalid_json", "p_truncated"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    probs = {
        k: getattr(args, k) for k in ("p_503", "p_429", "p_stall", "p_drop", "p_invalid_json", "p_truncated")
    }
    server = FaultServer(
        Faults(seed=args.seed, **probs),
        upstream=args.upstream,
        latency=args.latency,
        max_inflight=args.max_inflight,
        port=args.port,
    )
    server.start()
    print(f"READY {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
