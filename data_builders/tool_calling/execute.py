"""Running one tool call: a Python implementation in the sandbox, or a POST to an HTTP
endpoint.

A Python implementation (``module:function``) runs through ``fms_dgt.sandbox.run_callable``
(separate process, CPU/wall/memory limits, no network, private folder, empty environment),
with the tools file's and the task's folders on its import path. An HTTP endpoint is called
from this process with the arguments as the JSON body: the sandbox does not apply to it (the
endpoint runs wherever it runs; only the time limit and the size of the answer are bounded
here).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from fms_dgt.sandbox import Limits, run_callable

from .tools import Tool, schema_problem

MAX_RESULT_CHARS = 4000


@dataclass
class CallOutcome:
    """What one call gave: ``content`` (the tool message's text) when ``error`` is None."""

    tool: str
    content: str = ""
    error: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def as_content(value: Any) -> str:
    """A tool's return value as the text of a ``tool`` message (JSON unless it is text)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:MAX_RESULT_CHARS]


async def execute(
    tool: Tool, arguments: dict[str, Any], limits: Limits, python_path: list[Path], http_timeout: float
) -> CallOutcome:
    """The outcome of running one call; a result that breaks the tool's ``returns`` schema
    (when it declares one) is a failed call."""
    if tool.implementation is not None:
        outcome = await _in_sandbox(tool, arguments, limits, python_path)
    else:
        outcome = await _over_http(tool, arguments, http_timeout)
    if outcome.ok and tool.returns is not None:
        try:
            problem = schema_problem(tool.returns, json.loads(outcome.content), "(result)")
        except json.JSONDecodeError:
            problem = "it is not JSON"
        if problem:
            outcome.error = f"tool '{tool.name}': the result breaks its returns schema: {problem}"
    return outcome


async def _in_sandbox(
    tool: Tool, arguments: dict[str, Any], limits: Limits, python_path: list[Path]
) -> CallOutcome:
    assert tool.implementation is not None
    result = await run_callable(
        tool.implementation, arguments, limits, python_path=[str(p) for p in python_path]
    )
    evidence = {
        "via": "sandbox",
        "status": result.status,
        "wall_seconds": result.wall_seconds,
        "layers": result.layers,
    }
    if not result.ok:
        return CallOutcome(tool.name, error=f"tool '{tool.name}': {result.reason(800)}", evidence=evidence)
    try:
        return CallOutcome(tool.name, as_content(result.value), evidence=evidence)
    except (TypeError, ValueError) as exc:
        return CallOutcome(
            tool.name, error=f"tool '{tool.name}': result is not JSON: {exc}", evidence=evidence
        )


async def _over_http(tool: Tool, arguments: dict[str, Any], timeout: float) -> CallOutcome:
    assert tool.endpoint is not None
    start = time.monotonic()
    evidence: dict[str, Any] = {"via": "http", "endpoint": tool.endpoint}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(tool.endpoint, json=arguments) as response,
        ):
            body = (await response.content.read(MAX_RESULT_CHARS * 4)).decode("utf-8", errors="replace")
            status = response.status
    except asyncio.TimeoutError:
        evidence["wall_seconds"] = round(time.monotonic() - start, 3)
        return CallOutcome(
            tool.name, error=f"tool '{tool.name}': no answer within {timeout:g} s", evidence=evidence
        )
    except aiohttp.ClientError as exc:
        evidence["wall_seconds"] = round(time.monotonic() - start, 3)
        return CallOutcome(
            tool.name, error=f"tool '{tool.name}': {type(exc).__name__}: {exc}", evidence=evidence
        )
    evidence.update(status=status, wall_seconds=round(time.monotonic() - start, 3))
    if status >= 400:
        return CallOutcome(
            tool.name, error=f"tool '{tool.name}': HTTP {status}\n{body[:800]}", evidence=evidence
        )
    return CallOutcome(tool.name, body[:MAX_RESULT_CHARS], evidence=evidence)
