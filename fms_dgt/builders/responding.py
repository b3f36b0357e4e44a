"""Answering generated instructions: the step several generation builders end with
(``respond: true``), written once.

A builder that makes instructions mixes in ``Responder`` and calls ``respond(outputs)``:
each instruction record its own synchronous filters would keep (so duplicates cost no
answer) is sent to the ``responder`` engine block (the generating engine if the YAML has
none) with ``system`` as its system message; the answer goes into the record's
``response`` field, with its model, engine and tokens under ``lineage.response``. An empty
answer becomes a ``Rejection``; a failed request leaves nothing (it is in ``failed``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.builders.declarative import Rejection
from fms_dgt.datapoint import DataPoint
from fms_dgt.engines.base import Engine
from fms_dgt.engines.types import LMRequest, LMResult


class Responder:
    """Mixin for builders whose records have ``instruction`` and ``response`` fields."""

    blocks: dict[str, Any]
    engine: Engine

    def answering_engine(self) -> Engine:
        """The ``responder`` engine block (the generating one if the YAML has none)."""
        block = self.blocks.get("responder")
        return block if isinstance(block, Engine) else self.engine

    def would_keep(self, record: DataPoint) -> bool:
        """Whether the builder's own synchronous filters keep ``record`` now (dedup only ever
        rejects more later): only such records are worth answering. The run's filter chain
        still decides; a record not answered here is rejected there, with its reason."""
        for block in self.blocks.values():
            if isinstance(block, FilterBlock) and type(block).acheck is FilterBlock.acheck:
                try:
                    if block.check(record) is not None:
                        return False
                except Exception:
                    return True
        return True

    async def respond(self, outputs: list[Any], record_type: type[DataPoint], system: str) -> list[Any]:
        """``outputs`` with each ``record_type`` record worth it answered."""
        todo = [o for o in outputs if isinstance(o, record_type) and self.would_keep(o)]
        engine = self.answering_engine()
        results = await asyncio.gather(
            *(
                engine.agenerate(
                    LMRequest(
                        messages=[
                            {"role": "system", "content": system},
                            {"role": "user", "content": getattr(record, "instruction")},  # noqa: B009
                        ],
                        metadata={"respond_to": record.id},
                    )
                )
                for record in todo
            )
        )
        answered = {id(record): result for record, result in zip(todo, results)}
        out: list[Any] = []
        for output in outputs:
            result = answered.get(id(output))
            if result is None:
                out.append(output)  # a rejection, or a record the filters will reject
            elif result.ok:
                out.append(answer_record(output, result, engine))
            # a failed request is in the failed store already: nothing to keep
        return out


def answer_record(record: Any, result: LMResult, engine: Engine) -> Any:
    """``record`` with ``result``'s text as its response, or a Rejection if there is none."""
    text = result.texts[0].strip() if result.texts else ""
    if not text:
        return Rejection("empty response", raw={"instruction": record.instruction}, block="respond")
    response = {
        "model": result.model,
        "engine": engine.name,
        "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
    }
    return dataclasses.replace(record, response=text, id="", lineage={**record.lineage, "response": response})
