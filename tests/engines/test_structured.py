"""Structured-output checks: compiled validators are reused and behave like jsonschema.validate."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from fms_dgt.engines.structured import check_structured, schema_validator
from fms_dgt.engines.types import Constraint, LMResult

SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "minLength": 5}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}


def test_validator_is_compiled_once_per_schema_object_and_content() -> None:
    v = schema_validator(SCHEMA)
    assert schema_validator(SCHEMA) is v
    assert schema_validator(copy.deepcopy(SCHEMA)) is v  # same content, new object


def test_valid_output_is_parsed() -> None:
    result = LMResult(texts=['{"question": "Why is it so?", "answer": "Because."}'])
    assert check_structured(Constraint(json_schema=SCHEMA), result) is None
    assert result.parsed == [{"question": "Why is it so?", "answer": "Because."}]


def test_schema_violation_and_bad_json_are_reported() -> None:
    short = LMResult(texts=['{"question": "Why", "answer": "x"}'])
    assert "schema violation" in (check_structured(Constraint(json_schema=SCHEMA), short) or "")
    broken = LMResult(texts=['{"question": '])
    assert (check_structured(Constraint(json_schema=SCHEMA), broken) or "").startswith("not JSON")


def test_accepts_what_the_standard_parser_accepts() -> None:
    result = LMResult(texts=['{"x": NaN, "big": 123456789012345678901234567890}'])
    assert check_structured(Constraint(json_schema={"type": "object"}), result) is None
    assert result.parsed[0]["big"] == 123456789012345678901234567890


def test_broken_schema_raises_like_jsonschema() -> None:
    with pytest.raises(jsonschema.SchemaError):
        check_structured(Constraint(json_schema={"type": 12}), LMResult(texts=["{}"]))


def test_regex_and_choices() -> None:
    assert check_structured(Constraint(regex=r"\d+"), LMResult(texts=[" 42 "])) is None
    assert check_structured(Constraint(regex=r"\d+"), LMResult(texts=["x"])) is not None
    assert check_structured(Constraint(choices=["yes", "no"]), LMResult(texts=["maybe"])) is not None


def test_constraint_from_a_pydantic_model() -> None:
    from pydantic import BaseModel, Field

    class Pair(BaseModel):
        question: str = Field(min_length=5)
        answer: str

    c = Constraint.from_model(Pair)
    assert c.json_schema is not None and set(c.json_schema["required"]) == {"question", "answer"}
    ok = LMResult(texts=['{"question": "Why is it so?", "answer": "Because."}'])
    assert check_structured(c, ok) is None and ok.parsed == [
        {"question": "Why is it so?", "answer": "Because."}
    ]
    assert "schema violation" in (check_structured(c, LMResult(texts=['{"question": "Why"}'])) or "")


def test_a_constraint_names_only_the_field_it_sets_in_its_cache_key() -> None:
    assert Constraint(json_schema=SCHEMA).to_dict() == {"json_schema": SCHEMA}
    assert Constraint(choices=["a", "b"]).to_dict() == {"choices": ["a", "b"]}
