"""The ``conversation`` builder: multi-turn chats between a persona and an assistant.

One call makes one whole conversation, so a record is never half a conversation (a run
killed mid-call loses only the calls in flight; the same command continues):

1. a persona (the task's ``personas`` list, or a persona sampler's value);
2. a scenario: the user model describes a situation in which that person asks for help;
3. a number of exchanges drawn between ``min_turns`` and ``max_turns``; in each, the user
   model writes the person's next message (``user_llm``) and the assistant answers it as a
   normal chat (``llm1``);
4. after each exchange from ``min_turns`` on, the controller may end the conversation
   early: ``rule`` (the person's message matches ``end_pattern``: "thanks", "bye"...),
   ``llm`` (the model answers yes/no, constrained to those two words) or ``none``.

With ``user_patterns``, each user message is steered by a pattern drawn by weight (its hint
is in the user model's prompt); drawing one of the ``end_patterns`` (from ``min_turns`` on)
makes that exchange the last. With ``documents``, each conversation is grounded in a few of
them (``grounding.py``): the scenario is written about them, the assistant's system message
holds them, and the record keeps them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from fms_dgt import Constraint, Engine, GenerationDataBuilder, LMRequest, Rejection, register_data_builder
from fms_dgt.engines.types import LMResult

from .task import ConversationTask

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True)
_SOURCES = {
    name: (_PROMPTS / f"{name}.j2").read_text()
    for name in ("scenario", "user_turn", "end_check", "grounded_assistant")
}
_TEMPLATES = {name: _ENV.from_string(source) for name, source in _SOURCES.items()}
# what a role-playing model puts before a message, or writes when it starts the next turn
_LABEL = re.compile(
    r"^\s*(?:(?:the )?person(?: says| writes)?|user|you|me|message|situation|scenario)\s*:\s*", re.I
)
USER_STOPS = ["\nAssistant:", "\nPerson:", "\nUser:"]
_SENTENCE_END = re.compile(r"[.!?)](?=\s|$)")
EXAMPLE_WORDS = 60  # a seed scenario shown as an example: its sentences within this many words
OPENING_WORDS = 30  # ... and an opening message of a seed


class Failed(Exception):
    """A request failed after its retries (already recorded): the conversation is dropped."""


class Unusable(Exception):
    """A scenario or message that cannot be used: the conversation is rejected with this
    reason (and the text the model wrote)."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(reason)
        self.reason, self.text = reason, text


@register_data_builder("conversation")
class ConversationBuilder(GenerationDataBuilder):
    TASK_TYPE = ConversationTask
    task: ConversationTask
    llm1: Engine  # the assistant
    user_llm: Engine  # scenario, the user's messages and the llm controller

    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        task = self.task
        plan = task.plan(request_idx)
        persona, documents = plan.persona, plan.documents
        tokens = {"prompt": 0, "completion": 0}
        meta: dict[str, Any] = {"request_idx": request_idx}
        scenario = ""
        messages = [{"role": "system", "content": task.assistant_system}] if task.assistant_system else []
        drawn: list[str] = []
        ended_by, model, trimmed = "length", None, 0
        try:
            scenario = await self._user_side(
                "scenario",
                tokens,
                meta,
                persona=persona,
                details=plan.details,
                task_description=task.task_description,
                documents=documents,
                examples=[_brief(e.scenario, EXAMPLE_WORDS) for e in plan.examples],
            )
            for turn in range(1, plan.turns + 1):
                pattern = plan.pattern(turn)
                drawn += [pattern.name] if pattern else []
                history = [m for m in messages if m["role"] != "system"]
                text = await self._user_side(
                    "user_turn",
                    tokens,
                    {**meta, "turn": turn},
                    persona=persona,
                    scenario=scenario,
                    history=history,
                    hint=pattern.steer if pattern else None,
                    titles=[d["title"] for d in documents],
                    openings=[]
                    if history or not documents
                    else [_brief(o, OPENING_WORDS) for o in plan.openings()],
                )
                messages.append({"role": "user", "content": text})
                result = await self._answer(messages, documents, tokens, {**meta, "turn": turn})
                model = result.model
                answer = _whole(result, result.text.strip(), "answer", trim=task.trim_cut_answers)
                trimmed += answer != result.text.strip()
                messages.append({"role": "assistant", "content": answer})
                if pattern is not None and plan.ends_with(pattern):
                    ended_by = "controller"
                    break
                if task.min_turns <= turn < plan.turns and await self._ends(messages, tokens, meta):
                    ended_by = "controller"
                    break
        except Failed:
            return []  # the failed request is in the failed store
        except Unusable as exc:
            raw = {"persona": persona, "scenario": scenario, "messages": messages, "text": exc.text}
            return [Rejection(exc.reason, raw={**raw, **plan.grounding()}, block="conversation")]
        return [
            task.instantiate_output_example(
                persona=persona,
                scenario=scenario,
                messages=messages,
                num_turns=sum(1 for m in messages if m["role"] == "user"),
                ended_by=ended_by,
                documents=documents,
                lineage={
                    "model": model,
                    "engine": self.llm1.name,
                    "user_model": self.user_llm.model,
                    "prompt_template": _hash(task.assistant_system or ""),
                    "tokens": tokens,
                    "planned_turns": plan.turns,
                    **({"trimmed_answers": trimmed} if trimmed else {}),
                    **({"samples": plan.samples} if plan.samples else {}),
                    **({"patterns": drawn} if drawn else {}),
                    **plan.lineage(),
                },
            )
        ]

    async def _answer(
        self,
        messages: list[dict[str, str]],
        documents: list[dict[str, str]],
        tokens: dict[str, int],
        meta: dict[str, Any],
    ) -> LMResult:
        """The assistant's answer to the conversation so far; grounded, its system message
        holds the documents (after ``assistant_system``)."""
        asked = list(messages)
        if documents:
            system = _TEMPLATES["grounded_assistant"].render(
                system=self.task.assistant_system, documents=documents
            )
            chat = [m for m in messages if m["role"] != "system"]
            asked = [{"role": "system", "content": system.strip()}, *chat]
        return await self._ask(self.llm1, LMRequest(messages=asked, metadata=meta), tokens)

    async def _ask(self, engine: Engine, request: LMRequest, tokens: dict[str, int]) -> LMResult:
        result = await engine.agenerate(request)
        if not result.ok:
            raise Failed(result.error)
        tokens["prompt"] += result.prompt_tokens
        tokens["completion"] += result.completion_tokens
        return result

    async def _user_side(
        self, template: str, tokens: dict[str, int], meta: dict[str, Any], **context: Any
    ) -> str:
        """A scenario or the person's next message from the user model, cleaned; a message
        cut at max_tokens keeps its complete sentences."""
        prompt = _TEMPLATES[template].render(**context)
        params = self.user_llm.default_params
        params = params.merged(stop=[*(params.stop or []), *USER_STOPS])
        request = LMRequest(messages=[{"role": "user", "content": prompt}], params=params, metadata=meta)
        result = await self._ask(self.user_llm, request, tokens)
        what = "scenario" if template == "scenario" else "user message"
        return _whole(result, _clean(result.text), what, trim=True)

    async def _ends(
        self, messages: list[dict[str, str]], tokens: dict[str, int], meta: dict[str, Any]
    ) -> bool:
        """Whether the controller ends the conversation after this exchange."""
        task = self.task
        if task.controller == "rule":
            return bool(task.end_regex.search(messages[-2]["content"]))
        if task.controller == "none":
            return False
        history = [m for m in messages if m["role"] != "system"]
        request = LMRequest(
            messages=[{"role": "user", "content": _TEMPLATES["end_check"].render(history=history)}],
            params=self.user_llm.default_params.merged(max_tokens=4, temperature=0.0, n=1),
            constraint=Constraint(choices=["yes", "no"]),
            metadata={**meta, "step": "controller"},
        )
        result = await self._ask(self.user_llm, request, tokens)
        return result.text.strip().lower() == "yes"


def _whole(result: LMResult, text: str, what: str, trim: bool) -> str:
    """``text`` if the model finished it; if it was cut at max_tokens, its complete
    sentences (with ``trim``); else Unusable."""
    if result.finish_reasons and result.finish_reasons[0] == "length":
        ends = list(_SENTENCE_END.finditer(text)) if trim else []
        if not ends:
            raise Unusable(f"{what} cut at max_tokens", result.text)
        text = text[: ends[-1].end()]
    if not text:
        raise Unusable(f"empty {what}", result.text)
    return text


def _clean(text: str) -> str:
    """Labels and wrapping quotes a role-playing model adds, removed."""
    out = text.strip()
    while True:
        label = _LABEL.match(out)
        if not label:
            break
        out = out[label.end() :].strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'":
        out = out[1:-1].strip()
    return out


def _brief(text: str, words: int) -> str:
    """``text``'s first sentences within ``words`` words (else its first ``words`` words)."""
    text = " ".join(text.split())
    if len(text.split()) <= words:
        return text
    head = " ".join(text.split()[:words])
    ends = list(_SENTENCE_END.finditer(head))
    return head[: ends[-1].end()] if ends else head + " ..."


def _hash(extra: str) -> str:
    digest = hashlib.sha1("\n".join([*_SOURCES.values(), extra]).encode())
    return digest.hexdigest()[:12]
