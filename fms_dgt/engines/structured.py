"""Checking constrained (structured) output against its constraint, cheaply.

Every JSON-schema request is checked when its answer arrives, so this runs once per record.
``jsonschema.validate`` re-validates the *schema* against its metaschema on every call (about
1 ms here, more than the whole rest of the framework's per-record work); a compiled validator
per schema does the same check in tens of microseconds. Builders usually pass the same schema
object every call, so the cache is keyed by identity first and by content as a fallback (a
schema rebuilt per call, e.g. from a pydantic model, still compiles once).
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from typing import Any

from fms_dgt.engines.types import Constraint, LMResult

try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson comes with the openai extra
    _fast_loads = json.loads  # type: ignore[assignment]

_CACHE_SIZE = 256
_by_id: dict[int, tuple[dict[str, Any], Any]] = {}
_by_content: OrderedDict[str, Any] = OrderedDict()


def schema_validator(schema: dict[str, Any]) -> Any:
    """A compiled jsonschema validator for ``schema`` (checked against its metaschema once)."""
    hit = _by_id.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _by_content.get(key)
    if validator is None:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)  # a broken schema raises SchemaError, as jsonschema.validate does
        validator = cls(schema)
        _by_content[key] = validator
        if len(_by_content) > _CACHE_SIZE:
            _by_content.popitem(last=False)
    else:
        _by_content.move_to_end(key)
    if len(_by_id) >= _CACHE_SIZE:
        _by_id.clear()
    _by_id[id(schema)] = (schema, validator)  # holding the schema keeps its id from being reused
    return validator


def _parse_json(text: str) -> Any:
    """orjson when it can; the standard parser decides what orjson refuses (NaN, huge ints),
    so accepting exactly what ``json.loads`` accepts."""
    try:
        return _fast_loads(text)
    except ValueError:
        return json.loads(text)


def check_structured(constraint: Constraint | None, result: LMResult) -> str | None:
    """Parse and validate constrained output; returns a problem description or None.
    JSON-schema results get ``result.parsed`` (one object per text)."""
    if constraint is None:
        return None
    if constraint.choices is not None:
        bad = [t for t in result.texts if t.strip() not in constraint.choices]
        return f"{bad[0]!r} is not one of {constraint.choices}" if bad else None
    if constraint.regex is not None:
        pattern = re.compile(constraint.regex, re.DOTALL)
        bad = [t for t in result.texts if pattern.fullmatch(t.strip()) is None]
        return f"{bad[0][:80]!r} does not match {constraint.regex!r}" if bad else None
    validator = schema_validator(constraint.json_schema)  # type: ignore[arg-type]
    parsed = []
    for text in result.texts:
        try:
            obj = _parse_json(text)
        except json.JSONDecodeError as exc:
            return f"not JSON ({exc.msg} at char {exc.pos})"
        if not validator.is_valid(obj):
            import jsonschema

            error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
            return f"schema violation: {error.message if error else 'invalid'}"
        parsed.append(obj)
    result.parsed = parsed
    return None
