"""Tool implementations the sandbox tests call as ``module:function``."""

from __future__ import annotations

import asyncio


def add(a: int, b: int) -> int:
    return a + b


async def slow_upper(text: str) -> str:
    await asyncio.sleep(0.01)
    return text.upper()


def divide(a: float, b: float) -> float:
    return a / b
