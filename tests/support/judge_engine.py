"""The scripted engine, also able to answer LLM-judge requests, for testing the judge's
mechanics (the judge is also tested on real vLLM, tests/blocks/test_llm_judge.py).

A request whose JSON-schema constraint asks for ``score`` is answered with a score derived
from the record shown in the prompt: "scripted event N" scores 5 when N // 100 (the number of
the generation request) is even and 2 when odd; any other text scores 5 if it contains "good", else 2. Every other request is answered
as ``ScriptedEngine`` does."""

from __future__ import annotations

import json
import re

from fms_dgt.engines.types import LMRequest, LMResult
from fms_dgt.errors import RetryableEngineError
from tests.support.scripted_engine import ScriptedEngine

_EVENT = re.compile(r"scripted event (\d+)")


class JudgeEngine(ScriptedEngine):
    kind = "scripted_judge"

    async def _generate_once(self, request: LMRequest) -> LMResult:
        schema = (request.constraint.json_schema or {}) if request.constraint else {}
        if "score" not in schema.get("properties", {}):
            return await super()._generate_once(request)
        self.judged = getattr(self, "judged", 0) + 1  # generation keeps its own counter
        if self.fail_every and self.judged % self.fail_every == 0:
            raise RetryableEngineError(f"scripted judge failure {self.judged}", status=503)
        prompt = (request.messages or [{}])[-1].get("content", "")
        event = _EVENT.search(prompt)
        good = int(event.group(1)) // 100 % 2 == 0 if event else "good" in prompt
        answer = {"score": 5 if good else 2, "reason": "good enough" if good else "not good enough"}
        return LMResult(
            texts=[json.dumps(answer)], finish_reasons=["stop"], prompt_tokens=20, completion_tokens=7
        )
