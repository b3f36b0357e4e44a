"""The cheap per-record validators and exact dedup: each rejection names what to fix."""

from __future__ import annotations

import pytest

from fms_dgt.blocks.base import FilterPostprocessor
from fms_dgt.blocks.dedup.exact import ExactDedup
from fms_dgt.blocks.validators import (
    AnswerInContext,
    JsonSchemaFilter,
    LengthBounds,
    RegexFilter,
    RequiredFields,
)
from tests.blocks.conftest import QA, stream


def test_required_fields() -> None:
    block = RequiredFields(fields=["question", "answer"])
    assert block.check(QA(question="q?", answer="a")) is None
    assert block.check(QA(question="q?", answer="  ")) == "field 'answer' is empty"
    assert block.check({"question": "q?", "answer": []}) == "field 'answer' is empty"
    with pytest.raises(ValueError):
        RequiredFields()


def test_length_bounds_chars_and_tokens() -> None:
    block = LengthBounds(fields=["answer"], min_chars=5, max_chars=20, min_tokens=2, max_tokens=3)
    assert block.check(QA(question="", answer="two words")) is None
    assert block.check(QA(question="", answer="abc")) == "too short: 3 chars < min_chars 5"
    assert (block.check(QA(question="", answer="x" * 21)) or "").startswith("too long: 21 chars")
    assert block.check(QA(question="", answer="oneword")) == "too short: 1 tokens < min_tokens 2"
    assert block.check(QA(question="", answer="a b c d e")) == "too long: 5 tokens > max_tokens 3"


def test_regex_must_and_must_not() -> None:
    block = RegexFilter(
        fields=["question"], must_match=r"\?\s*$", must_not_match="as an ai", ignore_case=True
    )
    assert block.check(QA(question="Why?")) is None
    assert "does not match" in (block.check(QA(question="Tell me.")) or "")
    assert "forbidden" in (block.check(QA(question="As an AI, why?")) or "")
    with pytest.raises(ValueError, match="regular expression"):
        RegexFilter(must_match="(")


def test_json_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    block = JsonSchemaFilter(field="answer", schema=schema)
    assert block.check(QA(question="", answer='{"n": 3}')) is None
    assert block.check({"answer": {"n": 3}}) is None  # already parsed
    assert (block.check(QA(question="", answer="{nope")) or "").startswith("'answer' is not JSON")
    assert "schema violation at n" in (block.check(QA(question="", answer='{"n": "x"}')) or "")
    assert JsonSchemaFilter(field="answer").check(QA(question="", answer="[1, 2]")) is None


def test_answer_in_context() -> None:
    block = AnswerInContext()
    assert block.check({"answer": "the Eiffel tower", "context": "Paris has THE EIFFEL Tower."}) is None
    assert block.check({"answer": "Big Ben", "context": "Paris has the Eiffel Tower."}) is not None
    assert block.check({"answer": "", "context": "x"}) is not None


def test_exact_dedup_streaming_seeds_postprocessor() -> None:
    block = ExactDedup(fields=["question"])
    block.prime([QA(question="Why is the sky blue?", is_seed=True)])
    kept, rejected = stream(block, [QA(question="why is the sky BLUE"), QA(question="Why is grass green?")])
    assert len(kept) == 1 and rejected[0][1] == "exact duplicate"
    pp = FilterPostprocessor(ExactDedup(fields=["question"]))
    assert len(list(pp.process([{"question": "a"}, {"question": "A!"}, {"question": "b"}]))) == 2
