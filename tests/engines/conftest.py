"""Fixtures for engine tests: a fault-injecting loopback server (the real vLLM server
fixture is session-wide, in tests/conftest.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # so ``tests.support`` imports however pytest is invoked
    sys.path.insert(0, str(ROOT))

from tests.support.fault_server import FaultServer  # noqa: E402


@pytest.fixture
def fault_server() -> Iterator[Callable[..., FaultServer]]:
    """A factory: ``fault_server(faults=..., script=[...], upstream=...)`` → a started server,
    stopped at the end of the test."""
    started: list[FaultServer] = []

    def make(*args: object, **kwargs: object) -> FaultServer:
        server = FaultServer(*args, **kwargs).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
