"""``transport: batch``: requests go out in Batch API jobs, answers come back one by one.

The engine calls ``post(path, body)`` as with any transport and gets the response body of
the normal API, or the engine error that body would have raised; retries, structured-output
checks, caching and accounting stay the engine's. Underneath (``_Book``, one per journal):

1. **collect** requests per endpoint for ``collect_seconds`` (or until a job is full);
2. **submit** a job: journal the intent (fsync), upload the JSONL, create the job with the
   group id in its metadata, journal the job id (fsync);
3. **poll** it every ``poll_seconds`` until it ends, download its output and error files,
   and hand each caller its own answer (by ``custom_id``);
4. an item that expired or failed raises a retryable error: the engine's retry sends it
   again, and it goes into a *new* job with whatever else is being collected then, never
   with the rest of its old job.

**Resuming.** Before submitting, a request looks for an unsettled item with the same content
key in the journal (an earlier run submitted it and was killed): it then waits for that
item's job instead. Intents without a job id (a crash while creating) are first looked up
on the server by their group id. Where the journal lives: ``BatchOptions.state_dir`` if set,
else the folder of the task the request is made for (the running task's sink says it:
``base.current_sink().state_dir``), else ``options.default_state_dir()``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from fms_dgt.engines.base import current_sink
from fms_dgt.engines.batch.api import TERMINAL, BatchAPI
from fms_dgt.engines.batch.journal import BatchJournal, Group
from fms_dgt.engines.batch.options import BatchOptions, default_state_dir
from fms_dgt.engines.transports import Transport, status_error
from fms_dgt.errors import EngineError, FatalEngineError, RetryableEngineError

log = logging.getLogger("fms_dgt.engines.batch")


@dataclass
class _Item:
    key: str
    body: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    size: int
    custom_id: str = ""
    group: Group | None = None


@dataclass
class _Outcome:
    body: dict[str, Any] | None = None
    error: EngineError | None = None

    def deliver(self, future: asyncio.Future[dict[str, Any]]) -> None:
        if self.error is not None:
            future.set_exception(self.error)
        else:
            future.set_result(self.body or {})


def item_key(endpoint: str, body: dict[str, Any]) -> str:
    """The content address of a request: same endpoint and body, same key."""
    blob = endpoint.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


@dataclass
class _Collecting:
    items: list[_Item] = field(default_factory=list)
    size: int = 0
    timer: asyncio.TimerHandle | None = None


class _Book:
    """The jobs of one journal (see the module docstring)."""

    def __init__(self, journal: BatchJournal, api: BatchAPI, options: BatchOptions) -> None:
        self.journal = journal
        self.api = api
        self.options = options
        self._collecting: dict[str, _Collecting] = {}
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ready: dict[str, _Outcome] = {}  # answers of earlier runs' items nobody asked for yet
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._recovered = False
        self._recovering = asyncio.Lock()
        self.jobs_created = 0

    async def submit(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        key = item_key(endpoint, body)
        await self._recover()
        claimed = self.journal.claim(key)
        if claimed is not None:
            return await self._wait_claimed(key, *claimed)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        item = _Item(key, body, future, len(orjson.dumps(body)) + 160)
        self._add(endpoint, item)
        try:
            return await future
        except asyncio.CancelledError:
            if item.group is not None:  # in a job already: the next identical request takes it
                self._waiters.pop(item.custom_id, None)
                self.journal.unclaim(key, item.group, item.custom_id)
            raise

    async def aclose(self) -> None:
        for collecting in self._collecting.values():
            if collecting.timer is not None:
                collecting.timer.cancel()
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self.journal.close()

    # ---- collecting and submitting ----------------------------------------------------
    def _add(self, endpoint: str, item: _Item) -> None:
        collecting = self._collecting.setdefault(endpoint, _Collecting())
        collecting.items.append(item)
        collecting.size += item.size
        opts = self.options
        if len(collecting.items) >= opts.max_requests or collecting.size >= opts.max_bytes:
            self._flush(endpoint)
        elif collecting.timer is None:
            loop = asyncio.get_running_loop()
            collecting.timer = loop.call_later(opts.collect_seconds, self._flush, endpoint)

    def _flush(self, endpoint: str) -> None:
        collecting = self._collecting.pop(endpoint, None)
        if collecting is None:
            return
        if collecting.timer is not None:
            collecting.timer.cancel()
        items = [i for i in collecting.items if not i.future.done()]  # callers gone meanwhile
        if not items:
            return
        gid = uuid.uuid4().hex
        group = Group(gid, endpoint, time.time(), {})
        for n, item in enumerate(items):
            item.custom_id, item.group = f"{gid}-{n}", group
            group.items[item.custom_id] = item.key
            self._waiters[item.custom_id] = item.future
        self.journal.intent(group)
        self._tasks[gid] = asyncio.ensure_future(self._submit(group, items))

    async def _submit(self, group: Group, items: list[_Item]) -> None:
        lines = [
            orjson.dumps({"custom_id": i.custom_id, "method": "POST", "url": group.endpoint, "body": i.body})
            for i in items
        ]
        job: dict[str, Any] | None = None
        creating = False
        try:
            file_id = await self.api.upload(b"\n".join(lines) + b"\n", f"fms_dgt-{group.group}.jsonl")
            creating = True
            job = await self.api.create(file_id, group.endpoint, self.options.completion_window, group.group)
        except EngineError as exc:
            if creating:  # the job may exist although its answer was lost
                job = await self._created_after_all(group)
            if job is None:
                self.journal.abandoned(group)
                error = exc if isinstance(exc, FatalEngineError) else None
                self._resolve(group, {}, error or RetryableEngineError(f"batch job not created: {exc}"))
                self._tasks.pop(group.group, None)
                return
        self.jobs_created += 1
        self.journal.created(group, str(job["id"]))
        log.info("batch job %s: %d requests to %s", job["id"], len(items), group.endpoint)
        await self._poll(group)

    async def _created_after_all(self, group: Group) -> dict[str, Any] | None:
        """The job of ``group`` if the server created it although the answer was lost."""
        try:
            return await self.api.find(group.group, created_after=group.at - 600)
        except EngineError:
            return None  # the server is not answering: nothing was created we can see

    async def _recover(self) -> None:
        """Once per journal: find (or give up) the jobs of intents without a job id."""
        if self._recovered:
            return
        async with self._recovering:
            if self._recovered:
                return
            for group in self.journal.unresolved():
                try:
                    job = await self.api.find(group.group, created_after=group.at - 600)
                except EngineError as exc:
                    raise RetryableEngineError(
                        f"cannot look up the batch jobs of an earlier run: {exc}"
                    ) from None
                if job is None:
                    log.info("batch group %s of an earlier run was never created: resubmitting", group.group)
                    self.journal.abandoned(group)
                else:
                    log.info("batch job %s of an earlier run found by its group id", job["id"])
                    self.journal.created(group, str(job["id"]))
            self._recovered = True

    # ---- waiting and polling ----------------------------------------------------------
    async def _wait_claimed(self, key: str, group: Group, custom_id: str) -> dict[str, Any]:
        ready = self._ready.pop(custom_id, None)
        if ready is not None:
            self.journal.settled(group, [custom_id])
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            ready.deliver(future)
            return future.result()
        future = asyncio.get_running_loop().create_future()
        self._waiters[custom_id] = future
        if group.group not in self._tasks:
            log.info("resuming batch job %s of an earlier run", group.batch)
            self._tasks[group.group] = asyncio.ensure_future(self._poll(group))
        try:
            return await future
        except asyncio.CancelledError:
            self._waiters.pop(custom_id, None)
            self.journal.unclaim(key, group, custom_id)
            raise

    async def _poll(self, group: Group) -> None:
        assert group.batch is not None
        outcomes: dict[str, _Outcome] = {}
        missing: EngineError
        while True:
            try:
                job = await self.api.retrieve(group.batch)
            except RetryableEngineError as exc:
                log.warning("batch job %s: status unknown (%s); asking again", group.batch, exc)
                await asyncio.sleep(self.options.poll_seconds)
                continue
            except FatalEngineError as exc:
                missing = RetryableEngineError(f"batch job {group.batch} cannot be read: {exc}")
                break
            status = str(job.get("status"))
            if status in TERMINAL:
                outcomes, missing = await self._outcomes(job)
                break
            await asyncio.sleep(self.options.poll_seconds)
        self._resolve(group, outcomes, missing)
        self._tasks.pop(group.group, None)

    async def _outcomes(self, job: dict[str, Any]) -> tuple[dict[str, _Outcome], EngineError]:
        """Each item's outcome from the job's files, and the error of an item in neither."""
        status = str(job.get("status"))
        missing: EngineError = RetryableEngineError(f"batch job {job.get('id')} {status}: {_job_errors(job)}")
        if status == "completed":
            missing = RetryableEngineError(f"batch job {job.get('id')} returned no result for this request")
        outcomes: dict[str, _Outcome] = {}
        for file_key in ("output_file_id", "error_file_id"):
            file_id = job.get(file_key)
            if not file_id:
                continue
            try:
                content = await self.api.content(str(file_id))
            except EngineError as exc:
                missing = RetryableEngineError(f"results of batch job {job.get('id')} not downloaded: {exc}")
                continue
            for line in content.splitlines():
                if line.strip():
                    _read_line(line, outcomes)
        return outcomes, missing

    def _resolve(self, group: Group, outcomes: dict[str, _Outcome], missing: EngineError) -> None:
        """Hand every item of ``group`` its outcome; answers nobody waits for are kept for
        a later claim; failures are settled (a retry submits them anew)."""
        settled = []
        for custom_id in group.items:
            outcome = outcomes.get(custom_id) or _Outcome(error=missing)
            future = self._waiters.pop(custom_id, None)
            if future is not None and not future.done():
                outcome.deliver(future)
                settled.append(custom_id)
            elif outcome.error is None:
                self._ready[custom_id] = outcome
            else:
                settled.append(custom_id)
        if self.journal.groups.get(group.group) is group:  # not abandoned
            self.journal.settled(group, settled)


def _read_line(line: bytes, outcomes: dict[str, _Outcome]) -> None:
    try:
        record = orjson.loads(line)
        custom_id = str(record["custom_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.warning("unreadable line in a batch result file: %.200r", line)
        return
    response = record.get("response") or None
    error = record.get("error") or None
    if isinstance(response, dict) and response.get("status_code") is not None:
        status = int(response["status_code"])
        body = response.get("body")
        if 200 <= status < 300 and isinstance(body, dict):
            outcomes[custom_id] = _Outcome(body=body)
        else:
            outcomes[custom_id] = _Outcome(error=status_error(status, {}, orjson.dumps(body)))
    elif isinstance(error, dict):
        code = error.get("code") or "error"
        outcomes[custom_id] = _Outcome(
            error=RetryableEngineError(f"batch item {code}: {error.get('message')}")
        )


def _job_errors(job: dict[str, Any]) -> str:
    errors = (job.get("errors") or {}).get("data") or []
    text = "; ".join(str(e.get("message") or e.get("code")) for e in errors[:3] if isinstance(e, dict))
    return text or "no result for this request"


class BatchTransport(Transport):
    """The Batch API behind the ``Transport`` interface (see the module docstring).

    Args:
        base_url, api_key, timeout: as for every transport (``timeout`` bounds each HTTP call).
        options: the engine's ``batch:`` settings.
        journal_name: names the journal file (the engine's name).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        pool: int = 1,
        *,
        report_sent: bool = False,
        options: BatchOptions | None = None,
        journal_name: str = "openai",
    ) -> None:
        self.base_url = base_url
        self.options = options or BatchOptions()
        self.api = BatchAPI(base_url, api_key, timeout)
        self._prefix = urlsplit(base_url).path.rstrip("/")  # "/v1": endpoints are absolute paths
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", journal_name)[:60] or "engine"
        self._file_name = f"{slug}-{hashlib.sha256(base_url.encode()).hexdigest()[:8]}.jsonl"
        self._books: dict[Path, _Book] = {}

    @property
    def books(self) -> list[_Book]:
        return list(self._books.values())

    def journal_path(self) -> Path:
        """The journal of the request being made (see the module docstring)."""
        sink = current_sink()
        folder = self.options.state_dir or getattr(sink, "state_dir", None) or default_state_dir()
        return Path(folder).expanduser().absolute() / "batch_jobs" / self._file_name

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        journal = self.journal_path()
        book = self._books.get(journal)
        if book is None:
            book = self._books[journal] = _Book(BatchJournal.open(journal), self.api, self.options)
        return await book.submit(self._prefix + path, body)

    async def get(self, path: str) -> dict[str, Any]:
        return await self.api.get(path)

    async def aclose(self) -> None:
        books, self._books = list(self._books.values()), {}
        for book in books:
            await book.aclose()
        await self.api.aclose()
