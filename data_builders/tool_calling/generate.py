"""The ``tool_calling`` builder: conversations in which a user's requests need the task's
tools, with the calls that answer them (single, parallel, and multi-step where a result
feeds the next call), their results, and the answers, written as OpenAI chat messages.

The tools' results come from running them (``tool_execution: sandbox``: Python
implementations in the sandbox, HTTP endpoints) or from a model playing them
(``simulated``: the ``tool_sim`` block writes each result as JSON, checked against the
tool's ``returns`` schema; ``simulate.py``).

One builder call is one conversation of ``min_turns``..``max_turns`` user turns (drawn from
the seed and the call's index, as are its tools when ``tools_per_conversation`` picks a few).
Each turn: the model writes the user's message and the first calls (JSON ``{request,
calls: [{name, arguments}]}``; after the first turn, a follow-up shown the conversation so
far). Each round of calls is checked and executed; while fewer than ``max_steps`` rounds
were made, the model sees the results and may make further calls (``{calls: [...]}``; an
empty list ends them; a call repeating an earlier one of the turn is dropped). Then the
``judge`` block is asked whether the calls answer the request, and the model writes the
turn's answer from the results.

Checks, in order, each a rejection of the whole conversation with the raw output and the
messages so far (``turn N:`` in the reason when a task allows several turns):

1. ``malformed call``: the answer is not the JSON asked for (or has no calls, or more than
   ``max_calls`` in one round);
2. ``schema violation``: an unknown tool, or arguments that do not validate against the
   tool's parameters (missing required argument, wrong type, value outside an enum, ...);
3. ``execution failed`` (the implementation raised, timed out or ran out of memory in the
   sandbox, or the endpoint answered with an error) or ``simulation failed`` (the
   simulated result is not JSON or breaks the tool's ``returns`` schema);
4. ``judge disagrees`` (or ``judge answer unusable``): ``judge: false`` skips it;
5. ``no final answer``: the answer is empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel

from fms_dgt import Constraint, LMRequest, LMResult, PromptBuilder, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash
from fms_dgt.engines.base import Engine

from .exchange import Call, Exchange, FollowUp, Plan, Verdict, call_key, read_answer
from .execute import CallOutcome, execute
from .simulate import simulate
from .task import ToolCallingTask
from .tools import Tool, call_problem

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
)
NAMES = ("calls", "next_turn", "followup", "answer", "judge", "simulate")
CALLS, NEXT_TURN, FOLLOWUP, ANSWER, JUDGE = (_ENV.get_template(f"{n}.j2") for n in NAMES[:5])
TEMPLATE_HASH = source_hash(*((_PROMPTS / f"{n}.j2").read_text() for n in NAMES))
# what a builder call returns when it stops: [] (a request failed: recorded by the engine)
# or the one rejection
Stop = list[Any]


def persona_text(samples: dict[str, Any]) -> str | None:
    """The ``persona`` sampler's value as text (a mapping as ``key: value`` pairs)."""
    persona = samples.get("persona")
    if persona is None:
        return None
    if isinstance(persona, dict):
        return "; ".join(f"{k}: {v}" for k, v in persona.items() if v not in (None, "", [], {}))
    return str(persona)


class Conversation:
    """One builder call's state: its tools, persona, answers (for the token count) and
    messages."""

    def __init__(self, request_idx: int, tools: list[Tool], persona: str | None) -> None:
        self.tools = tools
        self.by_name = {t.name: t for t in tools}
        self.persona = persona
        self.exchange = Exchange(request_idx, tools)
        self.results: list[LMResult] = []
        self.meta = {"request_idx": request_idx}
        self.verdicts: list[dict[str, Any]] = []
        self.turn = 1  # the user turn being made


@register_data_builder("tool_calling")
class ToolCallingBuilder(PromptBuilder):
    TASK_TYPE = ToolCallingTask
    OUTPUT = Plan
    ENGINE = "llm1"
    task: ToolCallingTask

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    def _engine(self, name: str) -> Engine:
        block = self.blocks.get(name)
        if not isinstance(block, Engine):
            raise LookupError(f"the tool_calling builder needs an engine block named '{name}' in its YAML")
        return block

    def style_for(self, request_idx: int) -> str:
        """What kind of first turn call ``request_idx`` asks for, in turn."""
        styles = ["single"]
        if self.task.max_calls > 1:
            styles.append("parallel")
        if self.task.max_steps > 1:
            styles.append("sequential")
        return styles[request_idx % len(styles)]

    def prompt(self, examples: Sequence[Any], samples: dict[str, Any], request_idx: int = 0) -> str:
        tools, focus = self.task.tools_for(request_idx)
        return CALLS.render(
            tools=tools,
            examples=examples,
            focus=focus.name,
            style=self.style_for(request_idx),
            max_calls=self.task.max_calls,
            persona=persona_text(samples),
        )

    def guided(self, model: type[BaseModel], tools: list[Tool] | None = None) -> Constraint:
        """The decoding constraint for ``model``: for the call answers, each call is one of
        the conversation's tools with its own parameters schema, so an engine with
        structured output is steered to valid calls. The checks still run on what comes
        back: not every engine enforces a constraint, and a broken answer is kept
        (``keep_invalid``) to be rejected."""
        schema = model.model_json_schema()
        if "calls" in schema.get("properties", {}):
            one_of = [
                {
                    "type": "object",
                    "properties": {"name": {"type": "string", "enum": [t.name]}, "arguments": t.parameters},
                    "required": ["name", "arguments"],
                }
                for t in (tools if tools is not None else self.task.tools)
            ]
            calls: dict[str, Any] = {
                "type": "array",
                "items": {"anyOf": one_of},
                "maxItems": self.task.max_calls,
            }
            if model is Plan:  # a turn must call something
                calls["minItems"] = 1
            schema = {**schema, "properties": {**schema["properties"], "calls": calls}}
            schema.pop("$defs", None)
        return Constraint(json_schema=schema)

    async def _ask(
        self, engine: Engine, prompt: str, model: type[BaseModel] | None, conv: Conversation
    ) -> LMResult | None:
        """The answer to ``prompt`` (kept in ``conv.results``), or None when the request failed."""
        request = LMRequest(
            messages=[{"role": "user", "content": prompt}],
            constraint=self.guided(model, conv.tools) if model is not None else None,
            keep_invalid=True,
            metadata=conv.meta,
        )
        result = await engine.agenerate(request)
        if not result.ok:
            return None
        conv.results.append(result)
        return result

    def _reject(self, conv: Conversation, kind: str, detail: str, block: str, **raw: Any) -> Stop:
        where = f"turn {conv.turn}: " if self.task.max_turns > 1 else ""
        raw = {**raw, "messages": conv.exchange.messages}
        return [Rejection(f"{kind}: {where}{detail}", raw=raw, block=block)]

    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        task = self.task
        samples = task.draw_samples(request_idx)
        tools, focus = task.tools_for(request_idx)
        conv = Conversation(request_idx, tools, persona_text(samples))
        turns = task.turns_for(request_idx)
        for turn in range(1, turns + 1):
            conv.turn = turn
            if turn == 1:
                prompt = self.prompt(seed_data, samples, request_idx)
            else:
                focus = tools[(request_idx + turn - 1) % len(tools)]
                prompt = NEXT_TURN.render(
                    tools=tools,
                    history=conv.exchange.history,
                    persona=conv.persona,
                    focus=focus.name,
                    max_calls=task.max_calls,
                )
            stop = await self.one_turn(conv, prompt)
            if stop is not None:
                return stop
        exchange = conv.exchange
        lineage: dict[str, Any] = {
            "style": self.style_for(request_idx),
            "turns": turns,
            "tool_execution": task.tool_execution,
            "execution": exchange.evidence,
        }
        if task.judge:
            lineage["judge"] = conv.verdicts[0] if turns == 1 else conv.verdicts
        lineage["seed_ids"] = [e.id for e in seed_data if e.is_seed]
        lineage["tokens"] = {
            "prompt": sum(r.prompt_tokens for r in conv.results),
            "completion": sum(r.completion_tokens for r in conv.results),
        }
        record = {"messages": exchange.messages, "tools": [t.definition for t in tools], "lineage": lineage}
        extra = {"samples": samples} if samples else {}
        return self.records(record, conv.results[0], None, **extra)

    async def one_turn(self, conv: Conversation, prompt: str) -> Stop | None:
        """One user turn, added to ``conv``; what to return instead of a record, or None."""
        task, exchange = self.task, conv.exchange
        first = await self._ask(self.engine, prompt, Plan, conv)
        if first is None:
            return []
        text = first.texts[0]
        plan, problem = read_answer(text, Plan)
        if plan is None or not plan.calls:
            return self._reject(
                conv, "malformed call", problem or "no tool calls", "tool_calling", output=text
            )
        exchange.start_turn(plan.request.strip())
        calls = plan.calls
        while calls:
            problem = self.round_problem(calls, conv.by_name)
            if problem is not None:
                kind, detail = problem
                return self._reject(conv, kind, detail, "tool_calling", output=text)
            outcomes = await self.run_calls(calls, conv)
            if outcomes is None:
                return []
            exchange.add_round(calls, outcomes)
            failed = next((o for o in outcomes if not o.ok), None)
            if failed is not None:
                kind, block = (
                    ("simulation failed", "tool_simulation")
                    if task.simulated
                    else ("execution failed", "tool_execution")
                )
                return self._reject(
                    conv, kind, failed.error or "", block, output=text, evidence=exchange.evidence
                )
            if exchange.rounds >= task.max_steps:
                break
            more = await self._ask(self.engine, self.render(FOLLOWUP, conv), FollowUp, conv)
            if more is None:
                return []
            text = more.texts[0]
            followup, problem = read_answer(text, FollowUp)
            if followup is None:
                step = f"step {exchange.rounds + 1}: {problem}"
                return self._reject(conv, "malformed call", step, "tool_calling", output=text)
            calls = [c for c in followup.calls if call_key(c) not in exchange.seen]
        if task.judge:
            stop = await self.ask_judge(conv)
            if stop is not None:
                return stop
        answer = await self._ask(self.engine, self.render(ANSWER, conv), None, conv)
        if answer is None:
            return []
        final = answer.texts[0].strip()
        if not final:
            return self._reject(conv, "no final answer", "the reply is empty", "tool_calling")
        exchange.end_turn(final)
        return None

    async def run_calls(self, calls: list[Call], conv: Conversation) -> list[CallOutcome] | None:
        """The outcomes of one round of calls (run at once); None when a simulator request
        failed (recorded by its engine)."""
        task = self.task
        if not task.simulated:
            return list(
                await asyncio.gather(
                    *(
                        execute(
                            conv.by_name[c.name],
                            c.arguments,
                            task.limits,
                            task.python_path,
                            task.http_timeout,
                        )
                        for c in calls
                    )
                )
            )
        engine, earlier = self._engine("tool_sim"), list(conv.exchange.results)
        played = await asyncio.gather(
            *(
                simulate(engine, conv.by_name[c.name], c.arguments, conv.exchange.request, earlier, conv.meta)
                for c in calls
            )
        )
        if any(result is None and not outcome.ok for outcome, result in played):
            return None
        conv.results.extend(result for _, result in played if result is not None)
        return [outcome for outcome, _ in played]

    def round_problem(self, calls: list[Call], tools: dict[str, Tool]) -> tuple[str, str] | None:
        """The first problem of one round of calls (too many, or one not matching its schema)."""
        if len(calls) > self.task.max_calls:
            return "malformed call", f"{len(calls)} calls in one round > max_calls {self.task.max_calls}"
        for call in calls:
            problem = call_problem(call.model_dump(), tools)
            if problem:
                return "schema violation", problem
        return None

    def render(self, template: jinja2.Template, conv: Conversation) -> str:
        exchange = conv.exchange
        return template.render(
            request=exchange.request, tools=conv.tools, done=exchange.done, max_calls=self.task.max_calls
        )

    async def ask_judge(self, conv: Conversation) -> Stop | None:
        """None when the judge says yes (its verdict kept in ``conv.verdicts``)."""
        judge = self._engine("judge")
        result = await self._ask(judge, self.render(JUDGE, conv), Verdict, conv)
        if result is None:
            return []
        output = result.texts[0]
        verdict, problem = read_answer(output, Verdict)
        if verdict is None:
            return self._reject(conv, "judge answer unusable", problem or "", "tool_judge", output=output)
        if verdict.verdict == "no":
            return self._reject(conv, "judge disagrees", verdict.reason.strip(), "tool_judge", output=output)
        conv.verdicts.append({"engine": judge.name, **verdict.model_dump()})
        return None
