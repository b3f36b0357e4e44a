"""A ``FaultServer`` in a process of its own, for tests that measure time at the server.

Rate-limit tests check when requests *arrive*. A server on a thread of the test process
shares the interpreter lock with the client it measures: on a busy machine it reads a burst
of requests late and stamps them later than they arrived, which looks like the client
sending too many in one window. In its own process the server is only as late as the
kernel's scheduling makes it. Both processes read the same monotonic clock (Linux
``CLOCK_MONOTONIC``), so its stamps compare with the client's.

Usage::

    with ServerProcess(responder=TokenUsage(chars=4.0)) as srv:
        engine = OpenAIEngine("fake", base_url=srv.url, ...)
        ...
        records = srv.records()    # {"log": [...], "usage": [...], "inflight": [...]}

The keyword arguments are ``FaultServer``'s; they must be picklable (a responder is a
module-level class instance such as ``TokenUsage``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import urllib.request
from multiprocessing.connection import Connection
from typing import Any

from tests.support.fault_server import FaultServer, canned_response


class TokenUsage:
    """A responder that counts tokens as a provider might: prompt characters / ``chars``,
    completions of ``completion`` tokens (at most the request's ``max_tokens``)."""

    def __init__(self, chars: float = 4.0, completion: int = 20) -> None:
        self.chars = chars
        self.completion = completion

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        text = "".join(str(m.get("content", "")) for m in body.get("messages") or [])
        text += str(body.get("prompt") or "")
        prompt = math.ceil(len(text) / self.chars)
        completion = min(int(body.get("max_tokens") or 16), self.completion)
        answer = canned_response(path, body)
        answer["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return answer


def _child(conn: Connection, kwargs: dict[str, Any]) -> None:
    try:
        os.nice(-5)  # it stands in for a provider's front end, which our load does not slow
    except OSError:
        pass
    server = FaultServer(**kwargs).start()
    conn.send(server.url)
    conn.recv()  # any message: stop
    server.stop()


class ServerProcess:
    """Start a ``FaultServer(**kwargs)`` in a child process (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.url = ""
        self._conn: Connection | None = None
        self._proc: Any = None

    def start(self) -> ServerProcess:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child, self.kwargs), daemon=True)
        self._proc.start()
        if not parent.poll(60):
            self._proc.kill()
            raise RuntimeError("the server process did not start")
        self.url = parent.recv()
        self._conn = parent
        return self

    def records(self) -> dict[str, Any]:
        base = self.url.removesuffix("/v1")
        with urllib.request.urlopen(base + "/_records", timeout=30) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send("stop")
            except OSError:
                pass
            self._conn = None
        if self._proc is not None:
            self._proc.join(timeout=15)
            if self._proc.is_alive():
                self._proc.kill()
            self._proc = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
