"""What one ``tool_calling`` builder call builds: the answers the model is asked for (JSON
read into small models, a reason when it is not that JSON) and the conversation's chat
messages as they grow turn by turn, with the evidence of every call."""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from fms_dgt.sandbox.harness import strip_code_fences

from .execute import CallOutcome
from .tools import Tool

MAX_CALLS = 8
SYSTEM = (
    "You are a helpful assistant that can call functions. Call a function when the user's "
    "request needs it, with arguments that match its parameters; otherwise answer directly. "
    "The functions you can call (OpenAI tool definitions):\n"
)


class Call(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Plan(BaseModel):
    """A user turn: the user's message and the first round of calls that answer it."""

    request: str = Field(min_length=5, max_length=300)
    calls: list[Call] = Field(max_length=MAX_CALLS)


class FollowUp(BaseModel):
    """A later round of one turn: further calls, or none."""

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


def call_key(call: Call) -> str:
    return json.dumps([call.name, call.arguments], sort_keys=True)


class Exchange:
    """The messages of one conversation as it is built (a system message holding the
    tools, then per user turn: the request, rounds of calls with their results, the
    answer), and the evidence of its calls. ``done`` holds the current turn's calls with
    their results (what the follow-up, judge and answer prompts show); ``history`` the
    earlier turns' requests and answers."""

    def __init__(self, request_idx: int, tools: list[Tool]) -> None:
        self.request_idx = request_idx
        definitions = json.dumps([t.definition for t in tools], ensure_ascii=False)
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM + definitions}]
        self.turn = 0
        self.request = ""
        self.done: list[dict[str, Any]] = []
        self.history: list[dict[str, str]] = []  # {request, answer} of the finished turns
        self.results: list[dict[str, Any]] = []  # {name, arguments, result} of every turn
        self.evidence: list[dict[str, Any]] = []
        self.seen: set[str] = set()

    def start_turn(self, request: str) -> None:
        self.turn += 1
        self.request = request
        self.done, self.seen = [], set()
        self.messages.append({"role": "user", "content": request})

    @property
    def rounds(self) -> int:
        """Rounds of calls made in the current turn."""
        return sum(1 for e in self.evidence if e["turn"] == self.turn)

    def add_round(self, calls: list[Call], outcomes: list[CallOutcome]) -> None:
        step = self.rounds
        ids = [f"call_{self.request_idx}_{self.turn}_{step}_{k}" for k in range(len(calls))]
        tool_calls = [
            {"id": i, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for i, c in zip(ids, calls)
        ]
        self.messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
        for i, call, outcome in zip(ids, calls, outcomes):
            if outcome.ok:
                self.messages.append({"role": "tool", "tool_call_id": i, "content": outcome.content})
                done = {"name": call.name, "arguments": call.arguments, "result": outcome.content}
                self.done.append(done)
                self.results.append(done)
        self.seen.update(call_key(c) for c in calls)
        self.evidence.append(
            {
                "turn": self.turn,
                "step": step + 1,
                "calls": [o.evidence | {"tool": o.tool} for o in outcomes],
            }
        )

    def end_turn(self, answer: str) -> None:
        self.messages.append({"role": "assistant", "content": answer})
        self.history.append({"request": self.request, "answer": answer})
