"""Tools played by a model (``tool_execution: simulated``): for a call that passed its
schema check, the ``tool_sim`` engine block writes the JSON the tool would return.

The model is shown the tool (description, parameters, the declared result schema
``returns`` when there is one), the arguments, the user's request and the results earlier
calls of the conversation returned (so that a value it already made up, an order id or a
price, stays the same). Its decoding is steered to ``returns`` (else to a JSON object) on
an engine with structured output; what comes back is checked all the same: a result that
is not JSON, or that breaks ``returns``, is a failed call with the reason, which the
builder records as a ``simulation failed`` rejection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from fms_dgt import Constraint, LMRequest
from fms_dgt.engines.base import Engine
from fms_dgt.engines.types import LMResult
from fms_dgt.sandbox.harness import strip_code_fences

from .execute import MAX_RESULT_CHARS, CallOutcome
from .tools import Tool, schema_problem

_PROMPTS = Path(__file__).parent / "prompts"
SIMULATE = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_PROMPTS),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
).get_template("simulate.j2")
ANY_OBJECT: dict[str, Any] = {"type": "object"}
EARLIER_SHOWN = 4  # earlier results shown to the simulator (the context is small)


async def simulate(
    engine: Engine,
    tool: Tool,
    arguments: dict[str, Any],
    request: str,
    earlier: list[dict[str, Any]],
    meta: dict[str, Any],
) -> tuple[CallOutcome, LMResult | None]:
    """The simulated outcome of one call, and the model's result (None when the request
    itself failed: the engine records it as a failed request)."""
    schema = tool.returns or ANY_OBJECT
    prompt = SIMULATE.render(
        tool=tool, arguments=arguments, request=request, earlier=earlier[-EARLIER_SHOWN:], schema=schema
    )
    result = await engine.agenerate(
        LMRequest(
            messages=[{"role": "user", "content": prompt}],
            constraint=Constraint(json_schema=schema),
            keep_invalid=True,
            metadata=meta,
        )
    )
    evidence: dict[str, Any] = {"via": "simulated", "engine": engine.name}
    if not result.ok:
        return CallOutcome(tool.name, error=f"tool '{tool.name}': {result.error}", evidence=evidence), None
    text = strip_code_fences(result.texts[0].strip()).strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        error = f"tool '{tool.name}': the result is not JSON ({exc.msg} at char {exc.pos}): {text[:200]!r}"
        return CallOutcome(tool.name, error=error, evidence=evidence), result
    problem = schema_problem(schema, value, "(result)")
    if problem:
        what = "its returns schema" if tool.returns else "a JSON object"
        error = f"tool '{tool.name}': the result breaks {what}: {problem}"
        return CallOutcome(tool.name, error=error, evidence=evidence), result
    content = json.dumps(value, ensure_ascii=False)[:MAX_RESULT_CHARS]
    return CallOutcome(tool.name, content, evidence=evidence), result
