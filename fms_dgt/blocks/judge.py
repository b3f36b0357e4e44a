"""LLM-as-judge filter: an engine scores each record against a rubric; records scoring at
least ``threshold`` are kept.

The score is asked for as constrained JSON ``{"score": int, "reason": str}`` (the score an
enum of the allowed integers), so the answer always parses and the engine's structured-output
retries handle the rest. Each verdict is written on the record, kept or rejected, under
``lineage["judge"][<block name>] = {"score": ..., "reason": ...}`` (``lineage`` travels with
the record into data, final_data and rejected), so a threshold can be revisited later
without judging again.

The judge runs while records stream in (``acheck``; many records are judged concurrently,
sharing the engine's concurrency limit) and can also be a postprocessor (``check`` calls the
blocking engine API from the postprocessing thread). Its requests are counted with the task's
tokens, and a request that fails after retries is recorded as a failed request; the record is
then rejected (``on_error: reject``, default) or kept unjudged (``on_error: keep``).
"""

from __future__ import annotations

from typing import Any

import jinja2

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.datapoint import as_dict, get_field, user_items
from fms_dgt.engines.base import Engine
from fms_dgt.engines.types import Constraint, LMRequest, LMResult, SamplingOptions

DEFAULT_SYSTEM = (
    "You are a strict reviewer of training data for language models. Score the record "
    "against the rubric, from {{ min_score }} (fails the rubric) to {{ max_score }} (meets "
    'it fully). Answer with JSON only: {"score": <integer>, "reason": "<one short sentence>"}.'
)
DEFAULT_PROMPT = "Rubric:\n{{ rubric }}\n\nRecord:\n{{ text }}"


class LLMJudge(FilterBlock):
    """Keep records an LLM scores at or above ``threshold`` against ``rubric``.

    Args:
        engine: the engine block to use: the name of an engine block of the builder, or an
            inline engine configuration (``{type: vllm, ...}``). Set by the runtime.
        rubric: what a good record is, in plain words.
        threshold: minimum score kept.
        min_score, max_score: the score scale.
        fields: record fields shown to the judge, as ``field: value`` lines (default: every
            user field).
        prompt, system: Jinja templates of the user and system messages; they see
            ``rubric``, ``text`` (the rendered fields), ``record`` (a dict), ``min_score``
            and ``max_score``.
        sampling: sampling overrides (default: temperature 0, 256 tokens).
        on_error: ``reject`` or ``keep`` a record whose judge request failed.
    """

    kind = "llm_judge"

    def __init__(
        self,
        name: str | None = None,
        engine: Engine | None = None,
        rubric: str = "",
        threshold: int = 4,
        min_score: int = 1,
        max_score: int = 5,
        fields: list[str] | None = None,
        prompt: str = DEFAULT_PROMPT,
        system: str | None = DEFAULT_SYSTEM,
        sampling: SamplingOptions | None = None,
        on_error: str = "reject",
        **kwargs: Any,
    ) -> None:
        if not isinstance(engine, Engine):
            raise ValueError(
                "llm_judge needs 'engine': the name of an engine block or an engine config such as {type: vllm}"
            )
        if not rubric or not rubric.strip():
            raise ValueError("llm_judge needs 'rubric': what a good record looks like")
        if not min_score < max_score:
            raise ValueError(f"min_score ({min_score}) must be below max_score ({max_score})")
        if not min_score <= threshold <= max_score:
            raise ValueError(f"threshold {threshold} is outside the scale {min_score}..{max_score}")
        if on_error not in ("reject", "keep"):
            raise ValueError(f"on_error must be 'reject' or 'keep', got {on_error!r}")
        super().__init__(name, fields=fields, **kwargs)
        self.engine, self.rubric, self.threshold = engine, rubric.strip(), threshold
        self.min_score, self.max_score, self.on_error = min_score, max_score, on_error
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        try:
            self.prompt = env.from_string(prompt)
            self.system = env.from_string(system) if system else None
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"bad judge template: {exc.message} (line {exc.lineno})") from None
        self.params = engine.default_params.merged(
            **{"temperature": 0.0, "max_tokens": 256, **(sampling or {})}
        )
        self.constraint = Constraint(
            json_schema={
                "type": "object",
                "properties": {
                    "score": {"type": "integer", "enum": list(range(min_score, max_score + 1))},
                    "reason": {"type": "string"},
                },
                "required": ["score", "reason"],
                "additionalProperties": False,
            }
        )

    # ---- request and verdict ----------------------------------------------------------
    def render(self, record: Any) -> str:
        """The record as the judge sees it: ``field: value`` lines."""
        if self.fields:
            items = [(f, get_field(record, f)) for f in self.fields]
        else:
            items = list(user_items(record).items())
        return "\n".join(f"{k}: {v}" for k, v in items if v is not None)

    def request(self, record: Any) -> LMRequest:
        ctx = {
            "rubric": self.rubric,
            "text": self.render(record),
            "record": as_dict(record),
            "min_score": self.min_score,
            "max_score": self.max_score,
        }
        messages = [{"role": "user", "content": self.prompt.render(**ctx)}]
        if self.system is not None:
            messages.insert(0, {"role": "system", "content": self.system.render(**ctx)})
        return LMRequest(
            messages=messages,
            params=self.params,
            constraint=self.constraint,
            metadata={"block": self.name, "record_id": get_field(record, "id")},
        )

    def verdict(self, record: Any, result: LMResult) -> str | None:
        """Store the score on ``record``; return the rejection reason or None."""
        if not result.ok or not result.parsed:
            if self.on_error == "keep":
                return None
            return f"judge failed: {result.error or 'no parsed answer'}"
        answer = result.parsed[0]
        score, reason = int(answer["score"]), str(answer.get("reason", "")).strip()
        _lineage(record).setdefault("judge", {})[self.name] = {"score": score, "reason": reason}
        if score >= self.threshold:
            return None
        return f"judge score {score} < {self.threshold}: {reason[:200]}"

    # ---- FilterBlock ------------------------------------------------------------------
    async def acheck(self, record: Any) -> str | None:
        return self.verdict(record, await self.engine.agenerate(self.request(record)))

    def check(self, record: Any) -> str | None:
        """Blocking form, for postprocessing (runs in a worker thread, never on the loop)."""
        return self.verdict(record, self.engine.generate(self.request(record)))


def _lineage(record: Any) -> dict[str, Any]:
    if isinstance(record, dict):
        lineage = record.get("lineage")
        if not isinstance(lineage, dict):
            lineage = record["lineage"] = {}
        return lineage
    lineage = getattr(record, "lineage", None)
    if not isinstance(lineage, dict):
        lineage = {}
        record.lineage = lineage
    return lineage
