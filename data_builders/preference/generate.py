"""The ``preference`` builder: preference pairs (chosen / rejected) for DPO-style training.

Each instruction is sent once to the ``responder`` engine block for ``num_responses``
samples (sampling ``n``; the block samples at a temperature above 0 so they differ). The
distinct non-empty responses are judged by the ``judge`` block, Prometheus-style:
``absolute`` scores each response 1 to 5 on the rubric (``prompts/absolute.j2``, JSON
``{feedback, score}``); ``relative`` compares every pair (``prompts/relative.j2``, JSON
``{feedback, better: A|B|tie}``, the order of each pair drawn per row against position
bias) and a response's score is the comparisons it won. The best-scored response is
``chosen``, the worst ``rejected``. Rejections, with the reason and the raw text: fewer
than two distinct responses, a judge answer that is not JSON or off the scale, and a tie
(every response scored the same) unless ``on_tie: first`` keeps the first two responses.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, Field

from fms_dgt import Constraint, LMRequest, LMResult, PromptTransformer, Rejection, register_data_builder
from fms_dgt.builders.declarative import source_hash
from fms_dgt.engines.base import Engine

from .task import Instruction, PreferenceTask

_PROMPTS = Path(__file__).parent / "prompts"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS), undefined=jinja2.StrictUndefined, autoescape=False
)
RESPOND, ABSOLUTE, RELATIVE = (_ENV.get_template(f"{n}.j2") for n in ("respond", "absolute", "relative"))
TEMPLATE_HASH = source_hash(*(p.read_text() for p in sorted(_PROMPTS.glob("*.j2"))))
SCORES = (1, 2, 3, 4, 5)
VERDICTS = ("A", "B", "tie")


class Score(BaseModel):
    """An absolute judgement."""

    feedback: str = Field(min_length=1, max_length=200)
    score: Literal[1, 2, 3, 4, 5]


class Comparison(BaseModel):
    """A relative judgement."""

    feedback: str = Field(min_length=1, max_length=200)
    better: Literal["A", "B", "tie"]


def read_judgement(text: str, key: str, allowed: tuple[Any, ...]) -> tuple[dict[str, Any] | None, str | None]:
    """``({feedback, key}, None)`` or ``(None, why the judge's answer cannot be used)``."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg})"
    if not isinstance(obj, dict):
        return None, f"a JSON {type(obj).__name__}, not an object"
    if key not in obj:
        return None, f"no {key}"
    value = obj[key]
    if isinstance(value, bool) or value not in allowed:
        return None, f"{key} {json.dumps(value)} is not one of {', '.join(map(str, allowed))}"
    feedback = obj.get("feedback")
    return {"feedback": feedback.strip() if isinstance(feedback, str) else "", key: value}, None


@register_data_builder("preference")
class Preference(PromptTransformer):
    TASK_TYPE = PreferenceTask
    ENGINE = "responder"
    task: PreferenceTask

    @property
    def judge_engine(self) -> Engine:
        block = self.blocks.get("judge")
        if not isinstance(block, Engine):
            raise LookupError("the preference builder needs an engine block named 'judge' in its YAML")
        return block

    def prompt(self, row: Instruction) -> str:
        return RESPOND.render(instruction=row.instruction).strip()

    def prompt_hash(self) -> str:
        return TEMPLATE_HASH

    async def __call__(self, request_idx: int, rows: Any) -> list[Any]:
        done = await asyncio.gather(*(self.pair(request_idx, row) for row in rows))
        return [item for items in done for item in items]

    async def pair(self, chunk: int, row: Instruction) -> list[Any]:
        """The row's preference pair, or its rejection (nothing if a request failed: the
        failed store has it)."""
        task, engine = self.task, self.engine
        request = LMRequest(
            messages=[{"role": "user", "content": self.prompt(row)}],
            params=engine.default_params.merged(n=task.num_responses),
            metadata={"chunk": chunk, "input_id": row.id},
        )
        result = await engine.agenerate(request)
        if not result.ok:
            return []
        responses = list(dict.fromkeys(t.strip() for t in result.texts if t.strip()))
        found = {"input_id": row.id, "instruction": row.instruction}
        if len(responses) < 2:
            reason = (
                f"fewer than two distinct responses ({len(responses)} of {len(result.texts)}): "
                "does the responder sample at a temperature above 0?"
            )
            return [Rejection(reason, raw={**found, "responses": result.texts}, block="preference")]
        judge = self.judge_engine
        if task.judge_mode == "absolute":
            judged = await self.score_each(chunk, row, responses)
        else:
            judged = await self.compare_pairs(chunk, row, responses)
        if judged is None:
            return []
        if isinstance(judged, Rejection):
            judged.raw = {**found, "responses": responses, **(judged.raw or {})}
            return [judged]
        scores, verdicts, results = judged
        best, worst = max(scores), min(scores)
        tie = best == worst
        if tie and task.on_tie == "reject":
            raw = {**found, "responses": responses, "scores": scores, "judgements": verdicts}
            return [Rejection(f"tie: every response scored {best}", raw=raw, block="preference")]
        chosen, rejected = (0, 1) if tie else (scores.index(best), scores.index(worst))
        record = {
            "instruction": row.instruction,
            "chosen": responses[chosen],
            "rejected": responses[rejected],
            "chosen_score": scores[chosen],
            "rejected_score": scores[rejected],
            "responses": responses,
            "scores": scores,
            "model_name": result.model,
            "judge_model": results[0].model,
            "lineage": {
                "judge": {
                    "mode": task.judge_mode,
                    "engine": judge.name,
                    "model": results[0].model,
                    "judgements": verdicts,
                    "tokens": {
                        "prompt": sum(r.prompt_tokens for r in results),
                        "completion": sum(r.completion_tokens for r in results),
                    },
                },
                **({"tie": True} if tie else {}),
            },
        }
        return self.records(record, result, None, input_id=row.id)

    async def _judge(
        self, prompts: list[str], model: type[BaseModel], metadata: list[dict[str, Any]]
    ) -> list[LMResult]:
        constraint = Constraint.from_model(model)
        judge = self.judge_engine
        return list(
            await asyncio.gather(
                *(
                    judge.agenerate(
                        LMRequest(
                            messages=[{"role": "user", "content": p}],
                            constraint=constraint,
                            keep_invalid=True,
                            metadata=m,
                        )
                    )
                    for p, m in zip(prompts, metadata)
                )
            )
        )

    async def score_each(self, chunk: int, row: Instruction, responses: list[str]) -> Any:
        """``(scores, judgements, results)``, a Rejection, or None (a request failed)."""
        rubric = self.task.rubric
        prompts = [ABSOLUTE.render(rubric=rubric, instruction=row.instruction, response=r) for r in responses]
        meta = [{"chunk": chunk, "input_id": row.id, "response": i} for i in range(len(responses))]
        results = await self._judge(prompts, Score, meta)
        if not all(r.ok for r in results):
            return None
        scores, verdicts = [], []
        for i, result in enumerate(results):
            verdict, reason = read_judgement(result.texts[0], "score", SCORES)
            if verdict is None:
                return Rejection(
                    f"unusable judge answer for response {i + 1}: {reason}",
                    raw={"output": result.texts[0]},
                    block="preference",
                )
            scores.append(verdict["score"])
            verdicts.append({"response": i, **verdict})
        return scores, verdicts, results

    async def compare_pairs(self, chunk: int, row: Instruction, responses: list[str]) -> Any:
        """``(wins, judgements, results)``, a Rejection, or None (a request failed)."""
        order = []
        for pair in itertools.combinations(range(len(responses)), 2):
            order.append(pair[::-1] if self.task.swapped(row, pair) else pair)
        prompts = [
            RELATIVE.render(
                rubric=self.task.rubric,
                instruction=row.instruction,
                response_a=responses[a],
                response_b=responses[b],
            )
            for a, b in order
        ]
        meta = [{"chunk": chunk, "input_id": row.id, "pair": [a, b]} for a, b in order]
        results = await self._judge(prompts, Comparison, meta)
        if not all(r.ok for r in results):
            return None
        wins = [0] * len(responses)
        verdicts = []
        for (a, b), result in zip(order, results):
            verdict, reason = read_judgement(result.texts[0], "better", VERDICTS)
            if verdict is None:
                return Rejection(
                    f"unusable judge answer comparing responses {a + 1} and {b + 1}: {reason}",
                    raw={"output": result.texts[0]},
                    block="preference",
                )
            if verdict["better"] != "tie":
                wins[a if verdict["better"] == "A" else b] += 1
            verdicts.append({"a": a, "b": b, **verdict})
        return wins, verdicts, results
