"""The ``evol_instruct`` builder: instructions made harder, deeper or broader over several
generations of rewriting (Evol-Instruct, Xu et al. 2023), each record keeping its chain.

A call starts one chain per seed among its in-context examples (or, when the task names
topics, one chain from a first instruction written for the call's topic). Each generation
draws an operator (``operators:`` in the task.yaml, weighted) and asks the model to rewrite
the current instruction with it. A rewrite that is empty, identical to its parent or that
copies the prompt's own text is a rejection with that reason; the step is tried again with
another operator (``step_attempts``), and a chain whose step keeps failing is given up. The
last instruction of a chain (or every generation, with ``keep_intermediate``) becomes a
record whose ``evolution`` lists every step; with ``respond: true`` it is answered by a
second request (the ``responder`` engine block).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, Field

from fms_dgt import PromptBuilder, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash
from fms_dgt.builders.responding import Responder
from fms_dgt.metrics.rewrites import echoes, loops, trigrams
from fms_dgt.metrics.text import normalize_answer, tokenize

from .task import OPERATORS, EvolInstructTask, EvolvedInstruction, SeedInstruction

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS), undefined=jinja2.StrictUndefined, autoescape=False
)
TEMPLATES = {name: _ENV.get_template(f"{name}.j2") for name in (*OPERATORS, "from_topic")}
RESPOND_SYSTEM = (_PROMPTS / "respond.j2").read_text().strip()
TEMPLATE_HASH = source_hash(*(p.read_text() for p in sorted(_PROMPTS.glob("*.j2"))))
_MARKER = re.compile(r"^\s*(?:\d+\s*[.):]|[-*\u2022])\s+")  # "1. ", "- " before an instruction
# phrases of the rewriting task itself: a result that uses them (where its input did not)
# talks about the task instead of doing it ("Here is the new instruction: ...")
_META = frozenset(
    tuple(phrase.split())
    for phrase in (
        "new instruction",
        "the instruction",
        "this instruction",
        "original instruction",
        "rewritten instruction",
        "the prompt",
        "this prompt",
        "given prompt",
        "rewritten prompt",
        "earlier version",
        "this rewriting",
    )
)


class Step(BaseModel):
    """What each step answers with."""

    instruction: str = Field(min_length=10, max_length=600)


@dataclass
class Chain:
    """One chain of evolutions under way."""

    call: int
    seed: SeedInstruction | None
    topic: str | None
    examples: list[Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    model: str | None = None

    def add(self, generation: int, operator: str, instruction: str) -> None:
        self.history.append({"generation": generation, "operator": operator, "instruction": instruction})


def bigrams(text: str) -> set[tuple[str, ...]]:
    words = tokenize(text)
    return set(zip(words, words[1:]))


def unusable(text: str, parent: str | None, frame: set[tuple[str, ...]], given: str = "") -> str | None:
    """Why a step's instruction cannot be used (None if it can). ``frame``: the word
    trigrams of the prompt without the instruction and topic it was given; ``given``: the
    text the step was given (parent and topic), whose words the result may reuse."""
    if not any(ch.isalpha() for ch in text):
        return "empty instruction"
    if parent is not None and normalize_answer(text) == normalize_answer(parent):
        return "identical to its parent"
    if echoes(text, frame - trigrams(given)):
        return "the model echoed the prompt instead of writing an instruction"
    talk = sorted((bigrams(text) & _META) - bigrams(given))
    if talk:
        return f"talks about the rewriting ('{' '.join(talk[0])}') instead of being an instruction"
    if loops(text) >= 3:
        return "repeats itself"
    return None


@register_data_builder("evol_instruct")
class EvolInstruct(Responder, PromptBuilder):
    TASK_TYPE = EvolInstructTask
    OUTPUT = Step
    ENGINE = "llm1"
    task: EvolInstructTask

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        task = self.task
        seeds = [e for e in seed_data if e.is_seed]  # accepted records are not evolved again
        if task.from_topics:
            chains = [Chain(request_idx, None, task.topic_for(request_idx), seeds)]
        else:
            chains = [Chain(request_idx, seed, None, [seed]) for seed in seeds]
        done = await asyncio.gather(*(self.evolve(chain, k) for k, chain in enumerate(chains)))
        out = [item for items in done for item in items]
        return await self.respond(out, EvolvedInstruction, RESPOND_SYSTEM) if task.respond else out

    async def evolve(self, chain: Chain, k: int) -> list[Any]:
        """The chain's records and rejections."""
        task = self.task
        rng = random.Random(f"{task.runner_config.seed}:{chain.call}:{k}")
        out: list[Any] = []
        if chain.seed is not None:
            chain.add(0, "seed", chain.seed.instruction)
        elif not await self.advance(chain, 0, ["from_topic"], out):
            return out
        for generation in range(1, task.generations + 1):
            tries: list[str] = []
            for _ in range(task.step_attempts):
                tries.append(task.pick_operator(rng, tries))
            if not await self.advance(chain, generation, tries, out):
                return out  # given up: every try rejected, or a request failed
            if task.keep_intermediate or generation == task.generations:
                out.append(self.record(chain))
        return out

    async def advance(self, chain: Chain, generation: int, operators: list[str], out: list[Any]) -> bool:
        """Try ``operators`` in turn until one gives a usable instruction (added to the
        chain); each unusable one is a rejection in ``out``. False if none did."""
        for operator in operators:
            made = await self.step(chain, operator, generation)
            if made is None:
                return False  # the request failed: the failed store has it
            if isinstance(made, Rejection):
                out.append(made)
                continue
            chain.add(generation, operator, made)
            return True
        return False

    async def step(self, chain: Chain, operator: str, generation: int) -> str | Rejection | None:
        """One rewrite: the instruction, a Rejection saying why it is unusable, or None if
        the request failed."""
        parent = chain.history[-1]["instruction"] if chain.history else None
        template = TEMPLATES[operator]
        context = {"task_description": self.task.task_description, "topic": chain.topic or ""}
        prompt = template.render(**context, instruction=parent or "", examples=chain.examples)
        result = await self.ask(
            prompt, {"request_idx": chain.call, "generation": generation, "operator": operator}
        )
        if not result.ok:
            return None
        chain.model = result.model
        chain.tokens["prompt"] += result.prompt_tokens
        chain.tokens["completion"] += result.completion_tokens
        raw = self.answers(result)[0].instruction
        text = _MARKER.sub("", raw.strip()).strip().strip("\"'").strip()
        # the prompt's own words (examples included: copying one is no new instruction),
        # without the instruction and topic the step was given, which it may reuse
        blank = template.render(**{**context, "topic": ""}, instruction="", examples=chain.examples)
        reason = unusable(text, parent, trigrams(blank), f"{parent or ''}\n{chain.topic or ''}")
        if reason is None:
            return text
        found = {"operator": operator, "generation": generation, "parent": parent, "output": raw}
        return Rejection(reason, raw={**found, "evolution": list(chain.history)}, block="evol_step")

    def record(self, chain: Chain) -> EvolvedInstruction:
        history = [dict(step) for step in chain.history]
        lineage: dict[str, Any] = {
            "model": chain.model,
            "engine": self.engine.name,
            "prompt_template": TEMPLATE_HASH,
            "tokens": dict(chain.tokens),
            "operators": [step["operator"] for step in history[1:]],
            "icl_ids": [e.id for e in chain.examples],
        }
        if chain.seed is not None:
            lineage["seed_id"] = chain.seed.id
        record = self.task.instantiate_output_example(
            instruction=history[-1]["instruction"], evolution=history, topic=chain.topic, lineage=lineage
        )
        assert isinstance(record, EvolvedInstruction)
        return record
