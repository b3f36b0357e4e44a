"""The ``safety_refusal`` builder: requests that a risk policy forbids, each with a calibrated
refusal written from that policy (IBM fms-dgt's ``public/safety/refusal`` task files run
here unchanged).

Each call shows the model the risk's description and ``num_icl_examples`` example requests
(seeds, and accepted ones when ``machine_batch_size`` > 0) and asks for
``num_samples_per_batch`` new requests as a JSON list. A request that is empty or repeated
within the answer is rejected here; the builder's filters reject copies of the seeds and of
accepted requests (exact, then ROUGE-L >= 0.7). Each request the filters would keep is then
answered by the ``responder`` engine block with the policy in its system message: the reason
for the denial, the kind of reply, what it may and must not contain and the exception's safe
alternative. A refusal that contains an item of the policy's ``reply_cannot_contain`` (as a
phrase) is rejected with that item as the reason; an ``llm_judge`` filter in the task adds a
model's check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from fms_dgt import PromptBuilder, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash
from fms_dgt.builders.responding import Responder
from fms_dgt.engines.types import Constraint, LMResult

from .policy import words
from .task import Refusal, SafetyRefusalTask

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS), undefined=jinja2.StrictUndefined, autoescape=False
)
REQUESTS = _ENV.get_template("requests.j2")
REFUSAL = _ENV.get_template("refusal.j2")
TEMPLATE_HASH = source_hash(*(p.read_text() for p in sorted(_PROMPTS.glob("*.j2"))))
MIN_CHARS, MAX_CHARS = 10, 400  # of one request in the JSON the model must answer with
MIN_WORDS = 3
REPLY_TYPES = {
    "EXPLICIT_REFUSAL": "Decline the request clearly: say that you will not help with it.",
}
_MARKER = re.compile(r"^\s*(?:\d+\s*[.):]|[-*\u2022])\s+")


def clean(text: str) -> str:
    """A request without a list marker or quotes the model put around it."""
    return _MARKER.sub("", text.strip()).strip().strip("\"'").strip()


def normalized(text: str) -> str:
    """Lower case, words only: what the phrase check compares."""
    return " ".join(re.findall(r"\w+", text.lower()))


def forbidden_item(reply: str, cannot_contain: Sequence[str]) -> str | None:
    """The first ``reply_cannot_contain`` item found in ``reply`` as a phrase (None if none)."""
    text = f" {normalized(reply)} "
    for item in cannot_contain:
        phrase = normalized(item)
        if phrase and f" {phrase} " in text:
            return item
    return None


@register_data_builder("safety_refusal")
class SafetyRefusal(Responder, PromptBuilder):
    TASK_TYPE = SafetyRefusalTask
    ENGINE = "llm1"
    task: SafetyRefusalTask

    @property
    def constraint(self) -> Constraint:
        n = self.task.num_samples_per_batch
        item = {"type": "string", "minLength": MIN_CHARS, "maxLength": MAX_CHARS}
        array = {"type": "array", "items": item, "minItems": n, "maxItems": n}
        return Constraint(
            json_schema={"type": "object", "properties": {"requests": array}, "required": ["requests"]}
        )

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    def prompt(self, examples: Sequence[Any], samples: dict[str, Any]) -> str:
        task = self.task
        return REQUESTS.render(
            risk_group=words(task.policy.risk_group),
            group_description=task.policy.description,
            risk_description=task.risk.description,
            examples=[e.instruction for e in examples],
            count=task.num_samples_per_batch,
        )

    def system_prompt(self, examples: Sequence[Any]) -> str:
        """The refusal writer's instructions: the policy of the task's risk, and one example
        refusal (the first in-context example that has one) for the tone."""
        risk = self.task.risk
        example = next((e for e in examples if e.response), None)
        return REFUSAL.render(
            risk_name=words(risk.risk),
            risk_description=risk.description,
            reply_type=REPLY_TYPES.get(
                risk.short_reply_type,
                f"Decline the request ({words(risk.short_reply_type)})."
                if risk.short_reply_type
                else "Decline the request.",
            ),
            reason=words(risk.reason_denial) or "it falls under this risk",
            may_contain=risk.policy.reply_may_contain,
            cannot_contain=risk.policy.reply_cannot_contain,
            exception=words(risk.exception) if risk.exception else None,
            example=example,
        ).strip()

    def answers(self, result: LMResult) -> list[Any]:
        return list(result.parsed or [])

    def parse(self, answer: Any, examples: Sequence[Any], samples: dict[str, Any]) -> list[Any]:
        lineage = {
            "seed_ids": [e.id for e in examples if e.is_seed],
            "synthetic_ids": [e.id for e in examples if not e.is_seed],
        }
        out: list[Any] = []
        seen: set[str] = set()
        for raw in answer["requests"]:
            text = clean(raw)
            key = normalized(text)
            if len(re.findall(r"[^\W\d_]{2,}", text)) < MIN_WORDS:
                out.append(Rejection("not a request: fewer than 3 words", raw=raw, block="safety_refusal"))
            elif key in seen:
                out.append(Rejection("the same request twice in one answer", raw=raw, block="safety_refusal"))
            else:
                out.append(
                    self.task.instantiate_output_example(
                        instruction=text,
                        source="synthetic",
                        metadata=self.task.record_metadata,
                        lineage=dict(lineage),
                    )
                )
            seen.add(key)
        return out

    async def __call__(self, request_idx: int, seed_data: Sequence[Any]) -> list[Any]:
        requests = await super().__call__(request_idx, seed_data)
        answered = await self.respond(requests, Refusal, self.system_prompt(seed_data))
        return [self.check(item) for item in answered]

    def check(self, item: Any) -> Any:
        """A refusal that contains what the policy forbids becomes a rejection naming it."""
        if not isinstance(item, Refusal) or item.response is None:
            return item
        found = forbidden_item(item.response, self.task.risk.policy.reply_cannot_contain)
        if found is None:
            return item
        return Rejection(
            f"the refusal contains what the policy forbids (reply_cannot_contain): {found}",
            raw={"instruction": item.instruction, "response": item.response, "metadata": item.metadata},
            block="policy_check",
        )
