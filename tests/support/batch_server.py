"""A loopback server speaking OpenAI's Batch API, with the faults a real one has.

Endpoints (under ``/v1``): ``POST /files`` (multipart, ``purpose=batch``), ``GET
/files/{id}/content``, ``POST /batches``, ``GET /batches/{id}``, ``GET /batches`` (newest
first, ``limit``/``after``), ``POST /batches/{id}/cancel``, ``GET /models``.

A job stays ``in_progress`` for ``delay`` seconds (and while ``hold()`` is in force), then
ends when it is next looked at: each request line is answered by ``responder`` (the fault
server's canned answer by default) into the output file, unless

* ``expire(body)`` is true the first time that body is seen: the item goes to the error file
  as ``batch_expired`` and the job ends ``expired`` (OpenAI's shape for a job whose window
  ran out with work left);
* ``fail(body)`` returns a status the first time that body is seen: the item goes to the
  error file with that status and an error body (a partial failure; the job ``completed``).

``create_delay`` makes ``POST /batches`` create the job at once but answer only after that
many seconds: a client killed meanwhile never learns the job id (the crash window the
journal's intent + metadata covers). ``jobs`` lists every job created (id, status,
custom_ids, bodies), ``created`` counts them, ``uploads`` counts files. The server runs its
own event loop in a daemon thread and survives a client that is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.fault_server import canned_response

Responder = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass
class Job:
    id: str
    endpoint: str
    input_file_id: str
    metadata: dict[str, Any]
    created_at: float
    lines: list[dict[str, Any]]
    status: str = "in_progress"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def custom_ids(self) -> list[str]:
        return [str(line["custom_id"]) for line in self.lines]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [line["body"] for line in self.lines]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created_at),
            "request_counts": self.counts or {"total": len(self.lines), "completed": 0, "failed": 0},
            "metadata": self.metadata,
        }


def body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class BatchServer:
    """See the module docstring.

    Args:
        delay: seconds a job stays in progress.
        create_delay: seconds ``POST /batches`` waits, after creating the job, before answering.
        expire: items (by request body) that expire the first time they are seen.
        fail: the HTTP status an item (by request body) fails with the first time, or None.
        responder: ``(url, body) -> response body`` of a successful item.
    """

    def __init__(
        self,
        *,
        delay: float = 0.0,
        create_delay: float = 0.0,
        expire: Callable[[dict[str, Any]], bool] | None = None,
        fail: Callable[[dict[str, Any]], int | None] | None = None,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.delay = delay
        self.create_delay = create_delay
        self.expire = expire
        self.fail = fail
        self.responder = responder or canned_response
        self.host, self.port = host, port
        self.files: dict[str, bytes] = {}
        self.jobs: list[Job] = []
        self.uploads = 0
        self._seen: set[str] = set()  # bodies that already had their first-time fault
        self._held = False
        self._lock = threading.Lock()
        self._ids = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # ---- control ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def created(self) -> int:
        with self._lock:
            return len(self.jobs)

    def hold(self) -> None:
        """Keep every job in progress until ``release``."""
        with self._lock:
            self._held = True

    def release(self) -> None:
        with self._lock:
            self._held = False

    def start(self) -> BatchServer:
        self._thread = threading.Thread(target=self._main, name="batch-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("batch server did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = None

    def __enter__(self) -> BatchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- serving ------------------------------------------------------------------------
    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._serve())
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches", self._list)
        app.router.add_get("/v1/batches/{id}", self._retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self._cancel)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids:05d}"

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") != "batch" or upload is None or isinstance(upload, str):
            return _error(400, "expected purpose=batch and a file")
        content = upload.file.read()
        with self._lock:
            file_id = self._new_id("file")
            self.files[file_id] = content
            self.uploads += 1
        return web.json_response({"id": file_id, "object": "file", "bytes": len(content), "purpose": "batch"})

    async def _content(self, request: web.Request) -> web.Response:
        with self._lock:
            content = self.files.get(request.match_info["id"])
        if content is None:
            return _error(404, "no such file")
        return web.Response(body=content, content_type="application/octet-stream")

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            content = self.files.get(str(body.get("input_file_id")))
            if content is None:
                return _error(400, "unknown input_file_id")
            if body.get("completion_window") != "24h":
                return _error(400, "completion_window must be 24h")
            lines = [json.loads(line) for line in content.splitlines() if line.strip()]
            if any(line.get("url") != body.get("endpoint") for line in lines):
                return _error(400, "every line's url must be the job's endpoint")
            job = Job(
                self._new_id("batch"),
                str(body["endpoint"]),
                str(body["input_file_id"]),
                dict(body.get("metadata") or {}),
                time.time(),
                lines,
            )
            self.jobs.append(job)
            answer = job.to_dict()
        if self.create_delay:
            await asyncio.sleep(self.create_delay)  # created, but the client hears of it late
        return web.json_response(answer)

    async def _retrieve(self, request: web.Request) -> web.Response:
        with self._lock:
            job = self._job(request.match_info["id"])
            if job is None:
                return _error(404, "no such batch")
            if job.status == "in_progress" and not self._held and time.time() >= job.created_at + self.delay:
                self._finish(job)
            return web.json_response(job.to_dict())

    async def _list(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "20"))
        after = request.query.get("after")
        with self._lock:
            newest_first = list(reversed(self.jobs))
            if after:
                ids = [j.id for j in newest_first]
                newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
            page = newest_first[:limit]
            more = len(newest_first) > limit
            data = [j.to_dict() for j in page]
        return web.json_response({"object": "list", "data": data, "has_more": more})

    async def _cancel(self, request: web.Request) -> web.Response:
        with self._lock:
            job = self._job(request.match_info["id"])
            if job is None:
                return _error(404, "no such batch")
            if job.status == "in_progress":
                job.status = "cancelled"
            return web.json_response(job.to_dict())

    def _job(self, job_id: str) -> Job | None:
        return next((j for j in self.jobs if j.id == job_id), None)

    def _finish(self, job: Job) -> None:
        """Answer every line of ``job`` (under the lock)."""
        output, errors = [], []
        expired = False
        for line in job.lines:
            body, custom_id = line["body"], line["custom_id"]
            first = body_hash(body) not in self._seen
            status = self.fail(body) if self.fail and first else None
            if self.expire and first and self.expire(body):
                self._seen.add(body_hash(body))
                expired = True
                message = "This request could not be executed before the completion window expired."
                errors.append(
                    {
                        "custom_id": custom_id,
                        "response": None,
                        "error": {"code": "batch_expired", "message": message},
                    }
                )
            elif status is not None:
                self._seen.add(body_hash(body))
                error_body = {"error": {"message": f"injected failure {status}", "type": "server_error"}}
                response = {"status_code": status, "request_id": custom_id, "body": error_body}
                errors.append({"custom_id": custom_id, "response": response, "error": None})
            else:
                response = {
                    "status_code": 200,
                    "request_id": custom_id,
                    "body": self.responder(line["url"], body),
                }
                output.append(
                    {"id": f"req-{custom_id}", "custom_id": custom_id, "response": response, "error": None}
                )
        if output:
            job.output_file_id = self._new_id("file")
            self.files[job.output_file_id] = b"".join(json.dumps(o).encode() + b"\n" for o in output)
        if errors:
            job.error_file_id = self._new_id("file")
            self.files[job.error_file_id] = b"".join(json.dumps(e).encode() + b"\n" for e in errors)
        job.status = "expired" if expired else "completed"
        job.counts = {"total": len(job.lines), "completed": len(output), "failed": len(errors)}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=status)
