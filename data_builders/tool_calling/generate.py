"""The ``tool_calling`` builder: user requests that need the task's tools, the calls that
answer them (single, parallel, and multi-step where a result feeds the next call), really
executed, and the final answer, written as OpenAI chat messages.

One builder call: the model is shown the tools and writes a request plus the first calls
(JSON ``{request, calls: [{name, arguments}]}``). Each round of calls is checked and
executed; while fewer than ``max_steps`` rounds were made, the model sees the results and
may make further calls (``{calls: [...]}``; an empty list ends the calls; a call repeating
an earlier one exactly is dropped). Then the ``judge`` block is asked whether the calls
answer the request, and the model writes the final answer from the results.

Checks, in order, each a rejection with the raw output (and the messages so far) kept:

1. ``malformed call``: the answer is not the JSON asked for (or has no calls, or more than
   ``max_calls`` in one round);
2. ``schema violation``: an unknown tool, or arguments that do not validate against the
   tool's parameters (missing required argument, wrong type, value outside an enum, ...);
3. ``execution failed``: the implementation raised, timed out or ran out of memory in the
   sandbox, or the endpoint answered with an error (the sandbox's status and output kept);
4. ``judge disagrees`` (or ``judge answer unusable``): the judge says the calls do not
   answer the request (``judge: false`` skips it);
5. ``no final answer``: the final answer is empty.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import jinja2
from pydantic import BaseModel, Field, ValidationError

from fms_dgt import Constraint, LMRequest, LMResult, PromptBuilder, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash
from fms_dgt.engines.base import Engine
from fms_dgt.sandbox.harness import strip_code_fences

from .execute import CallOutcome, execute
from .task import MAX_CALLS, ToolCallingTask
from .tools import call_problem

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
)
CALLS, FOLLOWUP, ANSWER, JUDGE = (
    _ENV.get_template(f"{n}.j2") for n in ("calls", "followup", "answer", "judge")
)
TEMPLATE_HASH = source_hash(
    *((_PROMPTS / f"{n}.j2").read_text() for n in ("calls", "followup", "answer", "judge"))
)


class Call(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Plan(BaseModel):
    """The first answer: the user's request and the first round of calls."""

    request: str = Field(min_length=5, max_length=300)
    calls: list[Call] = Field(max_length=MAX_CALLS)


class FollowUp(BaseModel):
    """A later round: further calls, or none."""

    calls: list[Call] = Field(max_length=MAX_CALLS)


class Verdict(BaseModel):
    verdict: Literal["yes", "no"]
    reason: str = Field(max_length=300)


M = TypeVar("M", bound=BaseModel)


def read_answer(text: str, model: type[M]) -> tuple[M | None, str | None]:
    """``(answer, None)`` or ``(None, why the text is not the JSON asked for)``."""
    try:
        return model.model_validate_json(strip_code_fences(text.strip()).strip()), None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error.get("loc", ())) or "(answer)"
        return None, f"{where}: {error['msg']}"


class Exchange:
    """The messages of one exchange as it is built, and the evidence of its calls."""

    def __init__(self, request_idx: int, request: str) -> None:
        self.request_idx = request_idx
        self.request = request
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": request}]
        self.done: list[dict[str, Any]] = []  # {name, arguments, result} for the prompts
        self.evidence: list[dict[str, Any]] = []

    def add_round(self, calls: list[Call], outcomes: list[CallOutcome]) -> None:
        step = len(self.evidence)
        ids = [f"call_{self.request_idx}_{step}_{k}" for k in range(len(calls))]
        tool_calls = [
            {"id": i, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for i, c in zip(ids, calls)
        ]
        self.messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
        for i, call, outcome in zip(ids, calls, outcomes):
            if outcome.ok:
                self.messages.append({"role": "tool", "tool_call_id": i, "content": outcome.content})
                self.done.append({"name": call.name, "arguments": call.arguments, "result": outcome.content})
        self.evidence.append({"step": step + 1, "calls": [o.evidence | {"tool": o.tool} for o in outcomes]})


@register_data_builder("tool_calling")
class ToolCallingBuilder(PromptBuilder):
    TASK_TYPE = ToolCallingTask
    OUTPUT = Plan
    ENGINE = "llm1"
    task: ToolCallingTask

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    @property
    def judge_engine(self) -> Engine:
        block = self.blocks.get("judge")
        if not isinstance(block, Engine):
            raise LookupError("the tool_calling builder needs an engine block named 'judge' in its YAML")
        return block

    def style_for(self, request_idx: int) -> str:
        """What kind of exchange call ``request_idx`` asks for, in turn."""
        styles = ["single"]
        if self.task.max_calls > 1:
            styles.append("parallel")
        if self.task.max_steps > 1:
            styles.append("sequential")
        return styles[request_idx % len(styles)]

    def prompt(self, examples: Sequence[Any], samples: dict[str, Any], request_idx: int = 0) -> str:
        tools = self.task.tools
        return CALLS.render(
            tools=tools,
            examples=examples,
            focus=tools[request_idx % len(tools)].name,
            style=self.style_for(request_idx),
            max_calls=self.task.max_calls,
        )

    def guided(self, model: type[BaseModel]) -> Constraint:
        """The decoding constraint for ``model``: for the call answers, each call is one of
        the tools with its own parameters schema, so an engine with structured output is
        steered to valid calls. The checks still run on what comes back: not every engine
        enforces a constraint, and a broken answer is kept (``keep_invalid``) to be rejected."""
        schema = model.model_json_schema()
        if "calls" in schema.get("properties", {}):
            one_of = [
                {
                    "type": "object",
                    "properties": {"name": {"type": "string", "enum": [t.name]}, "arguments": t.parameters},
                    "required": ["name", "arguments"],
                }
                for t in self.task.tools
            ]
            calls: dict[str, Any] = {
                "type": "array",
                "items": {"anyOf": one_of},
                "maxItems": self.task.max_calls,
            }
            if model is Plan:  # the first round must call something
                calls["minItems"] = 1
            schema = {**schema, "properties": {**schema["properties"], "calls": calls}}
            schema.pop("$defs", None)
        return Constraint(json_schema=schema)

    async def _ask(
        self, engine: Engine, prompt: str, model: type[BaseModel] | None, meta: dict[str, Any]
    ) -> LMResult:
        request = LMRequest(
            messages=[{"role": "user", "content": prompt}],
            constraint=self.guided(model) if model is not None else None,
            keep_invalid=True,
            metadata=meta,
        )
        return await engine.agenerate(request)

    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        task = self.task
        samples = task.draw_samples(request_idx)
        meta = {"request_idx": request_idx}
        first = await self._ask(self.engine, self.prompt(seed_data, samples, request_idx), Plan, meta)
        if not first.ok:
            return []  # recorded as a failed request by the engine
        results = [first]
        text = first.texts[0]
        plan, problem = read_answer(text, Plan)
        if plan is None:
            return [Rejection(f"malformed call: {problem}", raw={"output": text}, block="tool_calling")]
        exchange = Exchange(request_idx, plan.request.strip())
        calls, seen = plan.calls, set[str]()
        if not calls:
            return [Rejection("malformed call: no tool calls", raw={"output": text}, block="tool_calling")]
        while calls:
            raw = {"output": text, "messages": exchange.messages}
            rejection = self.check_round(calls, raw)
            if rejection is not None:
                return [rejection]
            outcomes = await asyncio.gather(
                *(
                    execute(
                        task.tools_by_name[c.name],
                        c.arguments,
                        task.limits,
                        task.python_path,
                        task.http_timeout,
                    )
                    for c in calls
                )
            )
            exchange.add_round(calls, list(outcomes))
            failed = next((o for o in outcomes if not o.ok), None)
            if failed is not None:
                raw = {"output": text, "messages": exchange.messages, "evidence": exchange.evidence}
                return [Rejection(f"execution failed: {failed.error}", raw=raw, block="tool_execution")]
            seen.update(json.dumps([c.name, c.arguments], sort_keys=True) for c in calls)
            if len(exchange.evidence) >= task.max_steps:
                break
            more = await self._ask(self.engine, self.render(FOLLOWUP, exchange), FollowUp, meta)
            if not more.ok:
                return []
            results.append(more)
            text = more.texts[0]
            followup, problem = read_answer(text, FollowUp)
            if followup is None:
                raw = {"output": text, "messages": exchange.messages}
                step = len(exchange.evidence) + 1
                return [Rejection(f"malformed call: step {step}: {problem}", raw=raw, block="tool_calling")]
            calls = [
                c for c in followup.calls if json.dumps([c.name, c.arguments], sort_keys=True) not in seen
            ]
        lineage: dict[str, Any] = {"style": self.style_for(request_idx), "execution": exchange.evidence}
        if task.judge:
            judged = await self.ask_judge(exchange, meta)
            if judged is None:
                return []
            if isinstance(judged, Rejection):
                return [judged]
            results.append(judged[1])
            lineage["judge"] = {"engine": self.judge_engine.name, **judged[0].model_dump()}
        answer = await self._ask(self.engine, self.render(ANSWER, exchange), None, meta)
        if not answer.ok:
            return []
        results.append(answer)
        final = answer.texts[0].strip()
        if not final:
            return [
                Rejection(
                    "no final answer: the reply is empty",
                    raw={"messages": exchange.messages},
                    block="tool_calling",
                )
            ]
        exchange.messages.append({"role": "assistant", "content": final})
        lineage["seed_ids"] = [e.id for e in seed_data if e.is_seed]
        lineage["tokens"] = {
            "prompt": sum(r.prompt_tokens for r in results),
            "completion": sum(r.completion_tokens for r in results),
        }
        record = {
            "messages": exchange.messages,
            "tools": [t.definition for t in task.tools],
            "lineage": lineage,
        }
        extra = {"samples": samples} if samples else {}
        return self.records(record, first, None, **extra)

    def check_round(self, calls: list[Call], raw: dict[str, Any]) -> Rejection | None:
        """The first problem of one round of calls (too many, or one not matching its schema)."""
        if len(calls) > self.task.max_calls:
            reason = f"malformed call: {len(calls)} calls in one round > max_calls {self.task.max_calls}"
            return Rejection(reason, raw=raw, block="tool_calling")
        for call in calls:
            problem = call_problem(call.model_dump(), self.task.tools_by_name)
            if problem:
                return Rejection(f"schema violation: {problem}", raw=raw, block="tool_calling")
        return None

    def render(self, template: jinja2.Template, exchange: Exchange) -> str:
        return template.render(
            request=exchange.request, tools=self.task.tools, done=exchange.done, max_calls=self.task.max_calls
        )

    async def ask_judge(
        self, exchange: Exchange, meta: dict[str, Any]
    ) -> tuple[Verdict, LMResult] | Rejection | None:
        """The judge's verdict, a Rejection, or None (the request failed)."""
        result = await self._ask(self.judge_engine, self.render(JUDGE, exchange), Verdict, meta)
        if not result.ok:
            return None
        raw = {"output": result.texts[0], "messages": exchange.messages}
        verdict, problem = read_answer(result.texts[0], Verdict)
        if verdict is None:
            return Rejection(f"judge answer unusable: {problem}", raw=raw, block="tool_judge")
        if verdict.verdict == "no":
            return Rejection(f"judge disagrees: {verdict.reason.strip()}", raw=raw, block="tool_judge")
        return verdict, result
