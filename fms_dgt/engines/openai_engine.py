"""``openai``: any OpenAI-compatible endpoint (OpenAI, a vLLM server, Ollama, llama.cpp).

Two transports sit behind one tiny interface (``_Transport.post``/``get``/``aclose``):

* ``fast`` (default): one pooled ``aiohttp`` session sized to ``max_concurrency`` and orjson.
  Measured here against a loopback server, the official client costs ~2 ms of CPU per request
  and httpx ~2.2 ms, aiohttp ~0.15 ms; a data generation run makes many thousands of
  requests, so that difference is the framework's overhead budget (see docs/benchmarks.md).
* ``openai``: the official ``AsyncOpenAI`` client, with its own retries disabled because the
  ``Engine`` base retries (one retry policy, one set of counters).

Both transports return the raw JSON body and raise ``RetryableEngineError`` (429, 5xx,
timeouts, connection errors, invalid or truncated bodies; ``retry_after`` from the
``Retry-After`` header) or ``FatalEngineError`` (other 4xx); one parser turns the body into
an ``LMResult``, so the two paths cannot drift apart.
"""

from __future__ import annotations

import email.utils
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from fms_dgt.engines.base import Engine
from fms_dgt.engines.replicas import ReplicaSet
from fms_dgt.engines.types import Constraint, LMRequest, LMResult
from fms_dgt.errors import ConfigError, EngineError, FatalEngineError, RetryableEngineError

log = logging.getLogger("fms_dgt.engines.openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
CHAT_PATH = "/chat/completions"
COMPLETIONS_PATH = "/completions"
# statuses worth another attempt besides 5xx: timeout, conflict, too early, rate limit
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})


# ---- helpers shared by both transports ----------------------------------------------------
def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP-date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def status_error(status: int, headers: Mapping[str, str], body: bytes) -> EngineError:
    """The exception for an HTTP error status: retryable for 408/409/425/429/5xx, else fatal."""
    message = _error_message(body)
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status >= 500 or status in _RETRYABLE_4XX:
        return RetryableEngineError(text, status=status, retry_after=parse_retry_after(headers))
    return FatalEngineError(text, status=status)


def _error_message(body: bytes) -> str:
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip()
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        err = err.get("message") or err.get("detail") or err
    return str(err)[:300]


def decode_body(body: bytes) -> dict[str, Any]:
    """JSON object from a 2xx body; anything else is retryable (a proxy or server hiccup)."""
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RetryableEngineError(f"invalid JSON in response ({exc}); {len(body)} bytes") from None
    if not isinstance(data, dict):
        raise RetryableEngineError(f"response is {type(data).__name__}, not a JSON object")
    return data


# ---- transports ---------------------------------------------------------------------------
class _Transport:
    """POST a JSON body to ``base_url + path`` and return the decoded JSON object."""

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def get(self, path: str) -> dict[str, Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release pooled connections."""


class _FastTransport(_Transport):
    """aiohttp session + orjson; keep-alive pool sized to the engine's concurrency."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float, pool: int) -> None:
        import aiohttp
        import orjson

        self._aiohttp = aiohttp
        self._dumps = orjson.dumps
        self._base = base_url.rstrip("/")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._session = aiohttp.ClientSession(
            headers=headers,
            connector=aiohttp.TCPConnector(limit=pool, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0)),
            skip_auto_headers=("User-Agent",),
        )
        self._timeout = timeout

    async def _request(self, method: str, path: str, data: bytes | None) -> dict[str, Any]:
        aiohttp = self._aiohttp
        try:
            async with self._session.request(method, self._base + path, data=data) as resp:
                body = await resp.read()
                status = resp.status
                if status >= 300:
                    raise status_error(status, resp.headers, body)
        except TimeoutError:
            raise RetryableEngineError(f"no response within {self._timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise RetryableEngineError(f"connection failed: {type(exc).__name__}: {exc}") from None
        return decode_body(body)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", path, self._dumps(body))

    async def get(self, path: str) -> dict[str, Any]:
        return await self._request("GET", path, None)

    async def aclose(self) -> None:
        await self._session.close()


class _OpenAITransport(_Transport):
    """The official client; the body's non-core fields travel as ``extra_body``."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float, pool: int) -> None:
        import openai

        self._openai = openai
        # local servers accept any key, but the client refuses to start without one
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "EMPTY", max_retries=0, timeout=timeout
        )
        self._timeout = timeout

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        extra = dict(body)
        model = extra.pop("model")
        openai = self._openai
        try:
            if path == CHAT_PATH:
                create = self._client.chat.completions.with_raw_response.create
                raw = await create(model=model, messages=extra.pop("messages"), extra_body=extra)
            else:
                create = self._client.completions.with_raw_response.create
                raw = await create(model=model, prompt=extra.pop("prompt"), extra_body=extra)
            data = raw.content
        except openai.APIStatusError as exc:
            raise status_error(exc.status_code, exc.response.headers, exc.response.content) from None
        except openai.APITimeoutError:
            raise RetryableEngineError(f"no response within {self._timeout:g}s") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise RetryableEngineError(f"connection failed: {type(cause).__name__}: {cause}") from None
        except Exception as exc:  # body read errors surface as the vendored httpx's own types
            if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2"):
                raise RetryableEngineError(f"connection failed: {type(exc).__name__}: {exc}") from None
            raise
        return decode_body(data)

    async def get(self, path: str) -> dict[str, Any]:
        try:
            page = await self._client.models.list()
        except self._openai.APIStatusError as exc:
            raise status_error(exc.status_code, exc.response.headers, exc.response.content) from None
        except self._openai.APIConnectionError as exc:
            raise RetryableEngineError(f"connection failed: {exc}") from None
        return {"data": [{"id": m.id} for m in page.data]}

    async def aclose(self) -> None:
        await self._client.close()


_TRANSPORTS: dict[str, type[_Transport]] = {"fast": _FastTransport, "openai": _OpenAITransport}


# ---- the engine ---------------------------------------------------------------------------
class OpenAIEngine(Engine):
    """An OpenAI-compatible HTTP endpoint.

    Args:
        base_url: API root including ``/v1``; default ``$OPENAI_BASE_URL`` or OpenAI's. A list
            of URLs serving the same model spreads requests over them (least in flight).
        api_key: the key itself; default ``$OPENAI_API_KEY``. Never logged or described.
        api_key_env: name of an environment variable holding the key (preferred in YAML,
            so the secret stays out of task files).
        model: model name; if empty, the first model the server lists under ``/models``.
        api: ``chat`` (default: message requests go to chat/completions, prompt requests to
            completions) or ``completions`` (only prompt requests are accepted).
        transport: ``fast`` (pooled aiohttp + orjson) or ``openai`` (the official client).
        request_timeout: HTTP timeout of one attempt; default the engine ``timeout``.
        extra_body: extra JSON fields merged into every request (``top_k``, ``min_p``...).
        max_tokens_field: ``max_tokens``, or ``max_completion_tokens`` for OpenAI reasoning models.
        constraint_style: how regex/choice constraints are sent: ``structured_outputs``
            (vLLM >= 0.10) or ``guided`` (older vLLM: ``guided_regex``/``guided_choice``).
        **kwargs: the ``Engine`` settings (max_concurrency, max_retries, timeout, cache...).
    """

    kind: ClassVar[str] = "openai"

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | list[str] | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        api: Literal["chat", "completions"] = "chat",
        transport: Literal["fast", "openai"] = "fast",
        request_timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
        max_tokens_field: str = "max_tokens",
        constraint_style: Literal["structured_outputs", "guided"] = "structured_outputs",
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        if api not in ("chat", "completions"):
            raise ConfigError(f"unknown api '{api}'", field="api", hint="use 'chat' or 'completions'")
        if transport not in _TRANSPORTS:
            raise ConfigError(
                f"unknown transport '{transport}'", field="transport", hint="use 'fast' or 'openai'"
            )
        if constraint_style not in ("structured_outputs", "guided"):
            raise ConfigError(f"unknown constraint_style '{constraint_style}'", field="constraint_style")
        if api_key_env is not None:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise ConfigError(f"environment variable {api_key_env} is not set", field="api_key_env")
        urls = base_url if isinstance(base_url, list) else [base_url] if base_url else []
        if not urls:
            urls = [os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL]
        self.base_urls = [_checked_url(str(u)) for u in urls]
        self.base_url = self.base_urls[0]
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.api = api
        self.transport_name = transport
        self.request_timeout = float(request_timeout) if request_timeout else float(self.timeout)
        self.extra_body = dict(extra_body or {})
        self.max_tokens_field = max_tokens_field
        self.constraint_style = constraint_style
        self._replicas: ReplicaSet[_Transport] | None = None
        self._warned_n = False

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(base_url=self.base_url, api=self.api, transport=self.transport_name)
        if len(self.base_urls) > 1:
            info["replicas"] = list(self.base_urls)
        return info

    def __repr__(self) -> str:  # the key must never appear in logs or tracebacks
        return f"OpenAIEngine(name={self.name!r}, model={self.model!r}, base_url={self.base_url!r})"

    async def _start(self) -> None:
        # a re-bind to a new event loop discards a transport tied to the old one
        cls = _TRANSPORTS[self.transport_name]
        self._replicas = ReplicaSet(
            [cls(url, self._api_key, self.request_timeout, self.max_concurrency) for url in self.base_urls]
        )
        if not self.model:
            try:
                listing = await self._replicas.members[0].get("/models")
                self.model = str(listing["data"][0]["id"])
            except (EngineError, KeyError, IndexError, TypeError) as exc:
                await self._close()  # the connection pools opened above, or they leak
                raise FatalEngineError(
                    f"no model configured and {self.base_url}/models did not name one ({exc})"
                ) from None

    async def _close(self) -> None:
        if self._replicas is not None:
            replicas, self._replicas = self._replicas, None
            for transport in replicas.members:
                await transport.aclose()

    async def _generate_once(self, request: LMRequest) -> LMResult:
        path, body = self.build_body(request)
        replicas = self._replicas
        if replicas is None:
            raise FatalEngineError("engine is closed")
        with replicas.use() as transport:
            data = await transport.post(path, body)
        return self.parse_response(data, chat=path == CHAT_PATH, n=request.params.n)

    # ---- request/response mapping (public so tests and other engines can reuse it) ----
    def build_body(self, request: LMRequest) -> tuple[str, dict[str, Any]]:
        """The endpoint path and JSON body for ``request``."""
        p = request.params
        body: dict[str, Any] = {
            "model": self.model,
            self.max_tokens_field: p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
        }
        if p.n != 1:
            body["n"] = p.n
        if p.stop:
            body["stop"] = p.stop
        if p.seed is not None:
            body["seed"] = p.seed
        if request.messages is not None:
            if self.api == "completions":
                raise FatalEngineError(
                    "this engine is configured with api: completions; send a prompt, not messages"
                )
            path = CHAT_PATH
            body["messages"] = request.messages
        else:
            path = COMPLETIONS_PATH
            body["prompt"] = request.prompt
        if request.constraint is not None:
            self._add_constraint(body, request.constraint)
        if self.extra_body:
            body.update(self.extra_body)
        return path, body

    def _add_constraint(self, body: dict[str, Any], c: Constraint) -> None:
        if c.json_schema is not None:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", str(c.json_schema.get("title") or "output"))[:64]
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": c.json_schema, "strict": True},
            }
        elif self.constraint_style == "guided":
            if c.regex is not None:
                body["guided_regex"] = c.regex
            else:
                body["guided_choice"] = c.choices
        elif c.regex is not None:
            body["structured_outputs"] = {"regex": c.regex}
        else:
            body["structured_outputs"] = {"choice": c.choices}

    def parse_response(self, data: dict[str, Any], *, chat: bool, n: int = 1) -> LMResult:
        """Texts, finish reasons, usage and model from a (chat) completion body."""
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise RetryableEngineError(
                f"response has no choices: {_error_message(repr(data).encode())[:200]}"
            )
        if len(choices) > 1:
            choices = sorted(choices, key=lambda ch: ch.get("index", 0))
        texts: list[str] = []
        reasons: list[str | None] = []
        try:
            for ch in choices:
                if chat:
                    msg = ch["message"]
                    text = msg.get("content")
                    if text is None:  # a refusal or a tool call: still never None
                        text = msg.get("refusal") or ""
                else:
                    text = ch["text"] or ""
                texts.append(text)
                reasons.append(ch.get("finish_reason"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise RetryableEngineError(f"malformed choice in response: {exc!r}") from None
        if len(texts) < n and not self._warned_n:
            self._warned_n = True
            log.warning(
                "%s: asked for n=%d but the server returned %d choice(s); it may not support n",
                self.name,
                n,
                len(texts),
            )
        usage = data.get("usage") or {}
        return LMResult(
            texts=texts,
            finish_reasons=reasons,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            model=data.get("model") or self.model,
        )


def _checked_url(url: str) -> str:
    """An http(s) URL with a host, else a config error now (not minutes of retries later)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"base_url '{url}' is not an http(s) URL",
            field="base_url",
            hint="e.g. http://127.0.0.1:8000/v1 or https://api.openai.com/v1",
        )
    return url
