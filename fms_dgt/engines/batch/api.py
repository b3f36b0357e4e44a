"""The HTTP calls of the OpenAI Batch API, and nothing else.

``/files`` (upload the JSONL of requests, download results), ``/batches`` (create, look up,
list). Errors are the engine's own: ``RetryableEngineError`` for what may pass (429, 5xx,
timeouts, broken connections), ``FatalEngineError`` for the rest, built by the same helpers
as the normal transports (``transports.status_error``). The control calls are few and cheap,
so each one is retried a few times here; what still fails is the caller's to handle.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from fms_dgt.engines.transports import decode_body, status_error
from fms_dgt.errors import RetryableEngineError

TERMINAL = frozenset({"completed", "expired", "failed", "cancelled"})
GROUP_KEY = "fms_dgt_group"  # batch metadata: the journal's group id (finds a job after a crash)
_ATTEMPTS = 4


class BatchAPI:
    """One aiohttp session to ``base_url`` (the API root, with ``/v1``).

    Args:
        base_url: the API root.
        api_key: sent as a bearer token (None: none).
        timeout: seconds for one call; uploads and downloads get at least 10 minutes.
    """

    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self._base = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session = aiohttp.ClientSession(headers=headers, skip_auto_headers=("User-Agent",))
        self._timeout = timeout

    async def upload(self, content: bytes, filename: str) -> str:
        """Upload a JSONL file of requests (``purpose=batch``); its file id."""

        def form() -> Any:
            data = self._aiohttp.FormData()
            data.add_field("purpose", "batch")
            data.add_field("file", content, filename=filename, content_type="application/jsonl")
            return data

        answer = await self._json("POST", "/files", form=form, long=True)
        return str(answer["id"])

    async def create(self, input_file_id: str, endpoint: str, window: str, group: str) -> dict[str, Any]:
        body = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": window,
            "metadata": {GROUP_KEY: group},
        }
        return await self._json("POST", "/batches", json=body)

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/batches/{batch_id}")

    async def find(self, group: str, created_after: float, pages: int = 20) -> dict[str, Any] | None:
        """The job whose metadata names ``group``, among those created after the given Unix
        time (the list is newest first, so the search stops at older ones)."""
        after: str | None = None
        for _ in range(pages):
            query = "?limit=100" + (f"&after={after}" if after else "")
            page = await self._json("GET", "/batches" + query)
            jobs = page.get("data") or []
            for job in jobs:
                if (job.get("metadata") or {}).get(GROUP_KEY) == group:
                    return dict(job)
            if not page.get("has_more") or not jobs:
                return None
            if min(float(j.get("created_at") or 0) for j in jobs) < created_after:
                return None
            after = str(jobs[-1]["id"])
        return None

    async def content(self, file_id: str) -> bytes:
        """The bytes of a file (a job's output or error file)."""
        return await self._call("GET", f"/files/{file_id}/content", long=True)

    async def get(self, path: str) -> dict[str, Any]:
        """A plain GET (the engine's ``/models`` probe), tried once, as other transports do."""
        return await self._json("GET", path, attempts=1)

    async def aclose(self) -> None:
        await self._session.close()

    # ---- internals --------------------------------------------------------------------
    async def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        return decode_body(await self._call(method, path, **kw))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        form: Any = None,
        long: bool = False,
        attempts: int = _ATTEMPTS,
    ) -> bytes:
        """One call, tried up to ``attempts`` times while it fails transiently."""
        aiohttp = self._aiohttp
        timeout = aiohttp.ClientTimeout(total=max(self._timeout, 600.0) if long else self._timeout)
        for attempt in range(1, attempts + 1):
            try:
                data = form() if form is not None else None  # a form is read once: build it anew
                async with self._session.request(
                    method, self._base + path, json=json, data=data, timeout=timeout
                ) as resp:
                    body = await resp.read()
                    if resp.status >= 300:
                        raise status_error(resp.status, resp.headers, body)
                    return body
            except RetryableEngineError as exc:
                error: RetryableEngineError = exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                # the words the engine's probe looks for ("connection failed"), as the fast transport's
                error = RetryableEngineError(
                    f"connection failed: {method} {path}: {type(exc).__name__}: {exc}"
                )
            if attempt == attempts:
                raise error
            pause = 0.5 * 2**attempt * random.uniform(0.5, 1.0)
            await asyncio.sleep(max(min(error.retry_after or 0.0, 120.0), pause))
        raise AssertionError("unreachable")
