"""A block's handle on a shared engine, with the block's own sampling defaults.

Why: an engine override (``--engine``, or ``engines:`` in an override file) sends every
engine block of every builder to one engine, so that they share its concurrency limit, its
loaded model or started server, its cache and its accounting. But each block's ``sampling``
(max_tokens, temperature, ...) was tuned with its prompts and should survive the switch.
A view forwards every request to the shared engine and differs from it only in
``default_params`` (what builders pass as a request's sampling) and in its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fms_dgt.engines.base import Engine
from fms_dgt.engines.types import LMRequest, LMResult, SamplingParams


class EngineView(Engine):
    """``engine`` under another name and other sampling defaults; owns nothing."""

    def __init__(self, engine: Engine, name: str, default_params: SamplingParams) -> None:
        # deliberately no Engine.__init__: the state (loop, semaphore, cache, stats) is the
        # shared engine's, and a second copy of it would be a second concurrency limit
        self.shared = engine
        self.name = name
        self.default_params = default_params

    def __getattr__(self, attr: str) -> Any:
        # read-only attributes (model, kind, max_concurrency, stats, ...) are the engine's
        shared = self.__dict__.get("shared")
        if shared is None:
            raise AttributeError(attr)
        return getattr(shared, attr)

    async def _generate_once(self, request: LMRequest) -> LMResult:
        return await self.shared._generate_once(request)

    # a request without sampling of its own gets the view's (the block's), not the shared one's
    async def agenerate(self, request: LMRequest) -> LMResult:
        return await self.shared.agenerate(request.with_defaults(self.default_params))

    def generate(self, request: LMRequest) -> LMResult:
        return self.shared.generate(request.with_defaults(self.default_params))

    async def agenerate_batch(self, requests: Sequence[LMRequest]) -> list[LMResult]:
        return await self.shared.agenerate_batch([r.with_defaults(self.default_params) for r in requests])

    def generate_batch(self, requests: Sequence[LMRequest]) -> list[LMResult]:
        return self.shared.generate_batch([r.with_defaults(self.default_params) for r in requests])

    async def astart(self) -> None:
        await self.shared.astart()

    async def chat_tokenizer(self) -> Any | None:
        return await self.shared.chat_tokenizer()

    async def aclose(self) -> None:
        """Nothing to close: the runtime closes the shared engine once."""

    def close(self) -> None:
        """Nothing to close: the runtime closes the shared engine once."""

    def describe(self) -> dict[str, Any]:
        return {**self.shared.describe(), "name": self.name, "shared_with": self.shared.name}
