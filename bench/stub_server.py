"""A loopback OpenAI-compatible stub LLM server, for measuring the framework (never for tests
of behaviour: that is what the real engines and ``tests/support/fault_server.py`` are for).

Why a hand-written HTTP/1.1 server on a raw ``asyncio.Protocol`` (with uvloop when present)
instead of aiohttp's web server: at an instant latency the framework sends >1,000 requests/s,
and on a 2-core machine every microsecond the stub spends is taken from the process being
measured. This one costs a few tens of microseconds per request and schedules a delayed
reply with one ``call_later``, no coroutine per request.

What it does:

* ``POST /v1/chat/completions`` and ``POST /v1/completions`` answer after a latency drawn from
  a log-normal distribution with the given *mean* (not median) and sigma. By default the
  draws are stratified (inverse CDF of a golden-ratio sequence), so that 1,000 requests see
  the stated mean to within a fraction of a percent and the utilization ratio measures the
  framework rather than sampling luck; ``--sampling random`` draws i.i.d. instead.
* Answers are unique and shaped like the builder expects: when the request carries a
  ``response_format`` JSON schema, an object valid for it (every property; enums, numbers
  within bounds, arrays of the asked length, nested objects and ``$ref``; strings are
  sentences, question-like fields end with "?"; a string ``pattern`` is not followed);
  otherwise plain text. 20-60 words per answer; ``n`` is honoured;
  ``usage`` reports tokens (words stand in for tokens).
* ``GET /stats``: requests served, first request / last response wall-clock times and their
  span, mean (time-weighted) and maximum requests in flight, requests abandoned by the
  client, mean latency actually served. ``POST /stats/reset`` zeroes them and restarts the
  latency sequence (runs after a reset see the same latencies).
* ``GET /v1/models`` lists the model ``stub``.

Run: ``python -m bench.stub_server --port 0 --latency-mean 0.5 --latency-sigma 0.8``; it
prints ``READY http://127.0.0.1:PORT/v1`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import orjson

GOLDEN = (math.sqrt(5) - 1) / 2
QUESTION_FIELDS = frozenset({"question", "instruction", "prompt", "query", "input"})
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def _vocabulary(size: int = 4096) -> list[str]:
    """Deterministic pseudo-words: varied enough that random sentences never collide and
    near-duplicate detectors see unrelated texts."""
    rng = random.Random(7)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))))
    return sorted(words)


VOCAB = _vocabulary()


class LatencySampler:
    """Log-normal latencies with a given mean: ``mu = ln(mean) - sigma**2 / 2``."""

    def __init__(self, mean: float, sigma: float, *, stratified: bool = True, seed: int = 0) -> None:
        self.mean = mean
        self.sigma = sigma
        self.stratified = stratified
        self.seed = seed
        self.mu = math.log(mean) - sigma * sigma / 2 if mean > 0 else 0.0
        self._rng = random.Random(seed)
        self._normal = statistics.NormalDist()
        self._u = self._rng.random()

    def draw(self) -> float:
        if self.mean <= 0:
            return 0.0
        if self.sigma <= 0:
            return self.mean
        if not self.stratified:
            return self._rng.lognormvariate(self.mu, self.sigma)
        self._u = (self._u + GOLDEN) % 1.0
        u = min(max(self._u, 1e-9), 1 - 1e-9)
        return math.exp(self.mu + self.sigma * self._normal.inv_cdf(u))


class TextMaker:
    """Unique sentences: the request counter is spelled in two vocabulary words, the rest is
    seeded random filler, so no two answers are equal and none repeat across runs of a seed."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._count = 0

    def sentence(self, lo: int, hi: int, *, question: bool = False) -> str:
        self._count += 1
        n = self._count
        rng = self._rng
        words = [VOCAB[n % 4096], VOCAB[(n // 4096) % 4096]]
        words += rng.choices(VOCAB, k=rng.randint(lo, hi) - 2)
        rng.shuffle(words)
        words[0] = words[0].capitalize()
        return " ".join(words) + ("?" if question else ".")

    def answer(self, request: dict[str, Any]) -> str:
        """One completion for ``request``: a JSON object valid for its schema if it asked for
        one, else text."""
        fmt = request.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
            schema = (fmt.get("json_schema") or {}).get("schema") or {}
            if not schema.get("properties") and not schema.get("$ref"):
                schema = {"type": "object", "properties": {"question": {}, "answer": {}}}
            return orjson.dumps(self.value(schema, schema)).decode()
        return self.sentence(20, 60)

    def value(self, schema: dict[str, Any], root: dict[str, Any], key: str = "") -> Any:
        """A value valid for the JSON schema ``schema`` (``root`` holds its ``$defs``), as a
        structured-output server's would be: every property of an object, an allowed label
        of an enum, a number within its bounds, as many array items as the bounds ask.
        Strings are unique sentences (questions for question-like keys); a string
        ``pattern`` is not followed (a builder constraining text by regex rejects it)."""
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            return self.value({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, root, key)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self._rng.choice(schema["enum"])
        for combo in ("anyOf", "oneOf", "allOf"):
            options = [o for o in schema.get(combo) or [] if o.get("type") != "null"]
            if options:
                return self.value(options[0], root, key)
        kind = schema.get("type", "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if kind == "object":
            props = schema.get("properties") or {}
            return {name: self.value(sub, root, name) for name, sub in props.items()}
        if kind == "array":
            lo = int(schema.get("minItems", 1))
            hi = int(schema.get("maxItems", max(lo, 3)))
            count = self._rng.randint(lo, max(lo, min(hi, lo + 2)))
            return [self.value(schema.get("items") or {}, root, key) for _ in range(count)]
        if kind in ("integer", "number"):
            lo = math.ceil(schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1))
            hi = math.floor(schema.get("maximum", schema.get("exclusiveMaximum", lo + 11) - 1))
            num = self._rng.randint(lo, max(lo, hi))
            return num if kind == "integer" else float(num)
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        return self.text(schema, key)

    def text(self, schema: dict[str, Any], key: str) -> str:
        """A unique sentence within the string's length bounds."""
        question = key in QUESTION_FIELDS
        lo_chars = int(schema.get("minLength", 0))
        hi_chars = int(schema.get("maxLength", 10_000))
        out = self.sentence(8, 20, question=True) if question else self.sentence(12, 40)
        while len(out) < lo_chars:
            out = out[:-1] + " " + self.sentence(8, 20, question=question).lower()
        if len(out) > hi_chars:
            cut = out[: hi_chars - 1].rsplit(" ", 1)[0] if " " in out[: hi_chars - 1] else out[: hi_chars - 1]
            out = cut + ("?" if question else ".")
        return out


@dataclass
class Stats:
    """Server-side counters; ``inflight_area`` integrates in-flight requests over time."""

    served: int = 0
    abandoned: int = 0
    inflight: int = 0
    max_inflight: int = 0
    inflight_area: float = 0.0
    latency_sum: float = 0.0
    first_request: float | None = None  # wall clock (time.time) of the first request
    last_response: float | None = None
    _t0: float = 0.0  # monotonic twin of first_request
    _last_change: float = 0.0
    _last_done: float = 0.0
    _area_at_done: float = 0.0
    completion_tokens: int = 0

    def started(self, now: float) -> None:
        if self.first_request is None:
            self.first_request = time.time()
            self._t0 = self._last_change = now
        self._advance(now)
        self.inflight += 1
        if self.inflight > self.max_inflight:
            self.max_inflight = self.inflight

    def finished(self, now: float, latency: float, served: bool) -> None:
        self._advance(now)
        self.inflight -= 1
        if served:
            self.served += 1
            self.latency_sum += latency
            self.last_response = time.time()
            self._last_done = now
            self._area_at_done = self.inflight_area
        else:
            self.abandoned += 1

    def _advance(self, now: float) -> None:
        self.inflight_area += self.inflight * (now - self._last_change)
        self._last_change = now

    def report(self) -> dict[str, Any]:
        # the window is [first request, last response]: requests the client abandoned after
        # the last response (a run that stopped at its target) do not stretch it
        span = (self._last_done - self._t0) if self.served else 0.0
        return {
            "served": self.served,
            "abandoned": self.abandoned,
            "inflight": self.inflight,
            "max_inflight": self.max_inflight,
            "mean_inflight": self._area_at_done / span if span > 0 else 0.0,
            "first_request": self.first_request,
            "last_response": self.last_response,
            "span": span,
            "requests_per_s": self.served / span if span > 0 else 0.0,
            "mean_latency": self.latency_sum / self.served if self.served else 0.0,
            "completion_tokens": self.completion_tokens,
        }


class StubProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests are answered in order, one at a time."""

    def __init__(self, server: StubServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: asyncio.TimerHandle | None = None
        self.pending_latency = 0.0
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None
            self.server.stats.finished(time.monotonic(), self.pending_latency, served=False)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._process()

    def _process(self) -> None:
        while self.pending is None and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            method, _, rest = head[0].partition(" ")
            path = rest.partition(" ")[0]
            length = 0
            self.close_after = False
            for line in head[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    self.close_after = True
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            self._dispatch(method, path, body)

    def _dispatch(self, method: str, path: str, body: bytes) -> None:
        server = self.server
        path = path.split("?", 1)[0]
        if method == "POST" and path.endswith(("/chat/completions", "/completions")):
            try:
                request = orjson.loads(body) if body else {}
            except orjson.JSONDecodeError:
                self._send(400, b'{"error":{"message":"invalid JSON"}}')
                return
            payload = server.completion(request, chat=path.endswith("/chat/completions"))
            latency = server.sampler.draw()
            now = time.monotonic()
            server.stats.started(now)
            if latency <= 0:
                server.stats.finished(now, 0.0, served=True)
                self._send(200, payload)
                return
            self.pending_latency = latency
            self.pending = server.loop.call_later(latency, self._deliver, payload)
        elif method == "GET" and path == "/stats":
            self._send(200, orjson.dumps(server.stats.report()))
        elif method == "POST" and path == "/stats/reset":
            server.reset()
            self._send(200, b'{"ok":true}')
        elif method == "GET" and path.endswith("/models"):
            self._send(200, b'{"object":"list","data":[{"id":"stub","object":"model"}]}')
        elif method == "GET" and path in ("/health", "/"):
            self._send(200, b'{"ok":true}')
        else:
            self._send(404, b'{"error":{"message":"not found"}}')

    def _deliver(self, payload: bytes) -> None:
        self.pending = None
        self.server.stats.finished(time.monotonic(), self.pending_latency, served=True)
        self._send(200, payload)
        if self.buf:
            self._process()

    def _send(self, status: int, payload: bytes) -> None:
        if self.transport is None:
            return
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            f"Connection: {'close' if self.close_after else 'keep-alive'}\r\n\r\n"
        )
        self.transport.write(head.encode() + payload)
        if self.close_after:
            self.transport.close()


class StubServer:
    """The listening socket plus the shared sampler, text maker and stats."""

    def __init__(self, latency_mean: float, latency_sigma: float, *, stratified: bool, seed: int) -> None:
        self.sampler = LatencySampler(latency_mean, latency_sigma, stratified=stratified, seed=seed)
        self.text = TextMaker(seed)
        self.stats = Stats()
        self.loop = asyncio.get_event_loop()
        self._created = int(time.time())
        self._ids = 0

    def reset(self) -> None:
        """Zero the stats and restart the latency sequence, so every measured run after a
        reset sees the same latencies (answers keep counting, so they stay unique)."""
        inflight = self.stats.inflight
        self.stats = Stats()
        self.stats.inflight = inflight
        s = self.sampler
        self.sampler = LatencySampler(s.mean, s.sigma, stratified=s.stratified, seed=s.seed)

    def completion(self, request: dict[str, Any], *, chat: bool) -> bytes:
        n = int(request.get("n") or 1)
        texts = [self.text.answer(request) for _ in range(n)]
        if chat:
            prompt = sum(len(str(m.get("content", ""))) for m in request.get("messages") or [])
            choices = [
                {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                for i, t in enumerate(texts)
            ]
        else:
            prompt = len(str(request.get("prompt", "")))
            choices = [{"index": i, "text": t, "finish_reason": "stop"} for i, t in enumerate(texts)]
        completion_tokens = sum(t.count(" ") + 1 for t in texts)
        self.stats.completion_tokens += completion_tokens
        self._ids += 1
        return orjson.dumps(
            {
                "id": f"stub-{self._ids}",
                "object": "chat.completion" if chat else "text_completion",
                "created": self._created,
                "model": request.get("model") or "stub",
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt // 4,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt // 4 + completion_tokens,
                },
            }
        )


async def serve(args: argparse.Namespace) -> None:
    server = StubServer(
        args.latency_mean, args.latency_sigma, stratified=args.sampling == "stratified", seed=args.seed
    )
    loop = asyncio.get_running_loop()
    server.loop = loop
    listener = await loop.create_server(lambda: StubProtocol(server), args.host, args.port, backlog=1024)
    port = listener.sockets[0].getsockname()[1]
    print(f"READY http://{args.host}:{port}/v1", flush=True)
    await listener.serve_forever()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.stub_server", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on READY)")
    p.add_argument("--latency-mean", type=float, default=0.5, help="mean seconds per request (0: instant)")
    p.add_argument("--latency-sigma", type=float, default=0.8, help="sigma of the log-normal")
    p.add_argument("--sampling", choices=("stratified", "random"), default="stratified")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        import uvloop
    except ImportError:
        uvloop = None
    try:
        if uvloop is not None:
            uvloop.run(serve(args))
        else:
            asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
