"""The declarative builder layer: write ``prompt()`` (and, if the default does not fit,
``parse()``); the base class does the rest.

::

    class QA(BaseModel):
        question: str
        answer: str

    @register_data_builder("qa_pairs")
    class QAPairs(PromptBuilder):
        OUTPUT = QA                      # the structured-output constraint and the record type

        def prompt(self, examples, samples):
            shots = "\\n".join(f"Q: {e.question}\\nA: {e.answer}" for e in examples)
            return f"{self.task.task_description}\\n{shots}\\nWrite one more pair as JSON."

The base class sends the request to the builder's engine block (``ENGINE``, else the first
one) with its configured sampling, constrains the output to ``OUTPUT``'s JSON schema, lets
the engine retry output that does not parse, fills each record's lineage (model, engine,
prompt hash, tokens, the sampler values) and builds the records. ``parse`` may return a
mapping, a list of them, a record, None (nothing to keep) or a ``Rejection`` (kept in the
``rejected`` store with the raw text, as a record that failed a filter is).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from fms_dgt.builders.base import GenerationDataBuilder, TransformationDataBuilder
from fms_dgt.datapoint import DataPoint
from fms_dgt.engines.base import Engine
from fms_dgt.engines.types import Constraint, LMRequest, LMResult
from fms_dgt.task import GenerationTask, TransformationTask


@dataclass
class Rejection:
    """What ``parse`` returns for an answer it cannot use: recorded with the raw text."""

    reason: str
    raw: Any = None
    block: str = "parse"


@functools.cache
def record_type(model: type[BaseModel], name: str | None = None) -> type[DataPoint]:
    """A record dataclass with ``model``'s fields (a field with a default keeps it)."""
    hints = typing.get_type_hints(model)
    fields: list[tuple[str, Any, Any]] = []
    for field_name, info in model.model_fields.items():
        tp = hints.get(field_name, Any)
        if info.is_required():
            fields.append((field_name, tp, dataclasses.field()))
        elif info.default_factory is not None:
            fields.append((field_name, tp, dataclasses.field(default_factory=info.default_factory)))  # type: ignore[arg-type]
        else:
            fields.append((field_name, tp, dataclasses.field(default=info.default)))
    cls_name = name or f"{model.__name__}Record"
    return dataclasses.make_dataclass(cls_name, fields, bases=(DataPoint,), kw_only=True)


def as_messages(prompt: str | list[dict[str, Any]], system: str | None = None) -> list[dict[str, Any]]:
    """A prompt as chat messages (a string is one user message)."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system and not any(m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def source_hash(*objects: Any) -> str:
    """A short hash of the source of ``objects`` (functions, classes or strings): the
    ``prompt_template`` lineage, which changes when the prompt does."""
    digest = hashlib.sha1()
    for obj in objects:
        try:
            text = obj if isinstance(obj, str) else inspect.getsource(obj)
        except (OSError, TypeError):
            text = repr(obj)
        digest.update(text.encode())
    return digest.hexdigest()[:12]


class _Declarative:
    """What the generation and the transformation forms share."""

    OUTPUT: ClassVar[type[BaseModel] | None] = None
    ENGINE: ClassVar[str | None] = None  # the engine block's name; None: the first one
    SYSTEM: ClassVar[str | None] = None
    # True: an answer that breaks the constraint comes back at once as its text (the
    # constraint still guides decoding) for ``parse`` to read or reject with the raw text
    KEEP_INVALID: ClassVar[bool] = False

    blocks: dict[str, Any]
    task: Any

    @property
    def engine(self) -> Engine:
        if self.ENGINE is not None:
            return typing.cast(Engine, self.blocks[self.ENGINE])
        for block in self.blocks.values():
            if isinstance(block, Engine):
                return block
        raise LookupError(f"{type(self).__name__} has no engine block: add one to its YAML")

    @property
    def constraint(self) -> Constraint | None:
        return Constraint.from_model(self.OUTPUT) if self.OUTPUT is not None else None

    def prompt_hash(self) -> str:
        return source_hash(type(self).prompt, self.SYSTEM or "")  # type: ignore[attr-defined]

    async def ask(self, prompt: str | list[dict[str, Any]], metadata: dict[str, Any]) -> LMResult:
        """Send one prompt through the engine block, with its configured sampling."""
        engine = self.engine
        request = LMRequest(
            messages=as_messages(prompt, self.SYSTEM),
            constraint=self.constraint,
            keep_invalid=self.KEEP_INVALID,
            metadata=metadata,
        )
        return await engine.agenerate(request)

    def answers(self, result: LMResult) -> list[Any]:
        """Each sample of ``result``: an ``OUTPUT`` instance, or the text (without ``OUTPUT``
        or with ``KEEP_INVALID``)."""
        if self.OUTPUT is None or self.KEEP_INVALID:
            return list(result.texts)
        return [self.OUTPUT.model_validate(obj) for obj in result.parsed or []]

    def lineage(self, result: LMResult, **extra: Any) -> dict[str, Any]:
        return {
            "model": result.model,
            "engine": self.engine.name,
            "prompt_template": self.prompt_hash(),
            "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
            **extra,
        }

    def records(self, produced: Any, result: LMResult, raw: Any, **lineage: Any) -> list[Any]:
        """``parse``'s return value as records (and rejections)."""
        items = produced if isinstance(produced, list) else [] if produced is None else [produced]
        out: list[Any] = []
        for item in items:
            if isinstance(item, Rejection):
                out.append(dataclasses.replace(item, raw=item.raw if item.raw is not None else raw))
                continue
            if isinstance(item, BaseModel):
                item = item.model_dump()
            if isinstance(item, dict):
                fields = {k: v for k, v in item.items() if k != "lineage"}
                own = item.get("lineage") or {}
                item = self.task.instantiate_output_example(
                    **fields, lineage={**self.lineage(result, **lineage), **own}
                )
            elif isinstance(item, DataPoint):
                item.lineage = {**self.lineage(result, **lineage), **item.lineage}
            out.append(item)
        return out


class PromptBuilder(_Declarative, GenerationDataBuilder):
    """A generation builder written as ``prompt(examples, samples)`` and, optionally,
    ``parse(answer, examples, samples)``. With ``OUTPUT`` set and no ``TASK_TYPE`` of its
    own, the task's records have ``OUTPUT``'s fields."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.OUTPUT is not None and "TASK_TYPE" not in cls.__dict__:
            rec = record_type(cls.OUTPUT)
            cls.TASK_TYPE = type(
                f"{cls.__name__}Task", (GenerationTask,), {"INPUT_DATA_TYPE": rec, "OUTPUT_DATA_TYPE": rec}
            )

    def prompt(self, examples: Sequence[Any], samples: dict[str, Any]) -> str | list[dict[str, Any]]:
        raise NotImplementedError(f"{type(self).__name__} must define prompt(examples, samples)")

    def parse(self, answer: Any, examples: Sequence[Any], samples: dict[str, Any]) -> Any:
        """Default: the structured answer as one record (or the text as ``text``)."""
        return answer if self.OUTPUT is not None else {"text": answer}

    def samples_for(self, request_idx: int) -> dict[str, Any]:
        """The values the prompt of call ``request_idx`` gets (default: the task's sampler
        draws); they are kept in each record's lineage."""
        return typing.cast(dict[str, Any], self.task.draw_samples(request_idx))

    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        samples = self.samples_for(request_idx)
        result = await self.ask(self.prompt(seed_data, samples), {"request_idx": request_idx})
        if not result.ok:
            return []  # recorded as a failed request by the engine
        out: list[Any] = []
        extra = {"samples": samples} if samples else {}
        for answer, raw in zip(self.answers(result), result.texts):
            out += self.records(self.parse(answer, seed_data, samples), result, raw, **extra)
        return out


class PromptTransformer(_Declarative, TransformationDataBuilder):
    """A transformation builder written as ``prompt(row)`` and, optionally,
    ``parse(answer, row)``: one request per input row, all rows of a chunk at once. The
    default ``parse`` keeps the row's fields and adds the answer's."""

    async def __call__(self, request_idx: int, rows: Sequence[Any]) -> list[Any]:
        import asyncio

        results = await asyncio.gather(
            *(self.ask(self.prompt(row), {"chunk": request_idx, "input_id": row.id}) for row in rows)
        )
        out: list[Any] = []
        for row, result in zip(rows, results):
            if not result.ok:
                continue
            for answer, raw in zip(self.answers(result), result.texts):
                out += self.records(self.parse(answer, row), result, raw, input_id=row.id)
        return out

    def prompt(self, row: Any) -> str | list[dict[str, Any]]:
        raise NotImplementedError(f"{type(self).__name__} must define prompt(row)")

    def parse(self, answer: Any, row: Any) -> Any:
        fields = answer.model_dump() if isinstance(answer, BaseModel) else {"output": answer}
        return {**row.user_fields(), **fields}


__all__ = ["PromptBuilder", "PromptTransformer", "Rejection", "record_type", "as_messages", "source_hash"]
_ = TransformationTask  # re-exported for builder authors through fms_dgt
