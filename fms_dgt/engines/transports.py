"""HTTP transports for OpenAI-compatible endpoints, behind one small interface
(``Transport.post``/``get``/``aclose``):

* ``fast`` (default): one pooled ``aiohttp`` session sized to the engine's concurrency, and
  orjson. Measured here against a loopback server, the official client costs ~2 ms of CPU
  per request and httpx ~2.2 ms, aiohttp ~0.15 ms; a data generation run makes many
  thousands of requests, so that difference is the framework's overhead budget (see
  docs/benchmarks.md).
* ``openai``: the official ``AsyncOpenAI`` client, with its own retries disabled because
  the engine retries (one retry policy, one set of counters).

Both return the raw JSON body and raise ``RetryableEngineError`` (429, 5xx, timeouts,
connection errors, invalid or truncated bodies; ``retry_after`` from the ``Retry-After``
header) or ``FatalEngineError`` (other 4xx); one parser in the engine turns the body into
an ``LMResult``, so the two paths cannot drift apart.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from fms_dgt.engines.admission import REQUEST_SENT
from fms_dgt.errors import EngineError, FatalEngineError, RetryableEngineError

CHAT_PATH = "/chat/completions"
COMPLETIONS_PATH = "/completions"
# statuses worth another attempt besides 5xx: timeout, conflict, too early, rate limit
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})


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
    message = error_message(body)
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status >= 500 or status in _RETRYABLE_4XX:
        return RetryableEngineError(text, status=status, retry_after=parse_retry_after(headers))
    return FatalEngineError(text, status=status)


def error_message(body: bytes) -> str:
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


class Transport:
    """POST a JSON body to ``base_url + path`` and return the decoded JSON object.

    Built with the API root, the key (None: none sent), the timeout of one attempt and the
    number of pooled connections. ``report_sent``: tell the rate limits when each request
    has been written (``admission.REQUEST_SENT``), where the transport can."""

    def __init__(
        self, base_url: str, api_key: str | None, timeout: float, pool: int, *, report_sent: bool = False
    ) -> None:
        self.base_url = base_url

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def get(self, path: str) -> dict[str, Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release pooled connections."""


class _FastTransport(Transport):
    """aiohttp session + orjson; keep-alive pool sized to the engine's concurrency."""

    def __init__(
        self, base_url: str, api_key: str | None, timeout: float, pool: int, *, report_sent: bool = False
    ) -> None:
        import aiohttp
        import orjson

        self._aiohttp = aiohttp
        self._dumps = orjson.dumps
        self._base = base_url.rstrip("/")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        traces = []
        if report_sent:  # a trace hook costs a little per request: only when rate limited
            trace = aiohttp.TraceConfig()
            trace.on_request_chunk_sent.append(_report_sent)
            traces.append(trace)
        self._report_sent = report_sent
        self._session = aiohttp.ClientSession(
            trace_configs=traces,
            headers=headers,
            connector=aiohttp.TCPConnector(limit=pool, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0)),
            skip_auto_headers=("User-Agent",),
        )
        self._timeout = timeout

    async def _request(self, method: str, path: str, data: bytes | None) -> dict[str, Any]:
        aiohttp = self._aiohttp
        try:
            sent = REQUEST_SENT.get() if self._report_sent else None
            async with self._session.request(
                method, self._base + path, data=data, trace_request_ctx=sent
            ) as resp:
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


async def _report_sent(session: Any, context: Any, params: Any) -> None:
    if context.trace_request_ctx is not None:
        context.trace_request_ctx()


class _OpenAITransport(Transport):
    """The official client; the body's non-core fields travel as ``extra_body``. (It cannot
    report when a request was written: rate limits count it from admission.)"""

    def __init__(
        self, base_url: str, api_key: str | None, timeout: float, pool: int, *, report_sent: bool = False
    ) -> None:
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
            client: Any = self._client  # the body is already in the wire format: no typed overloads
            if path == CHAT_PATH:
                create = client.chat.completions.with_raw_response.create
                raw = await create(model=model, messages=extra.pop("messages"), extra_body=extra)
            else:
                create = client.completions.with_raw_response.create
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


TRANSPORTS: dict[str, type[Transport]] = {"fast": _FastTransport, "openai": _OpenAITransport}
