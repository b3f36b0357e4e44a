"""``answer_supported``: answers grounded in their context pass, others are rejected with a
reason naming the support found and the words the context lacks."""

from __future__ import annotations

import pytest

from fms_dgt.blocks.grounding import AnswerSupported, content_words, stem
from fms_dgt.registry import blocks

CONTEXT = (
    "Tides are caused mainly by the gravity of the Moon. Most places have two high tides a day; "
    "the cycle takes about 24 hours and 50 minutes. The Sun's pull is a little less than half the Moon's."
)


def _rec(answer: str, context: str = CONTEXT) -> dict[str, str]:
    return {"question": "Why?", "answer": answer, "context": context}


def test_words_are_compared_without_function_words_and_endings() -> None:
    assert stem("orbits") == stem("orbiting") == stem("orbited") == "orbit"
    assert stem("gas") == "gas" and stem("is") == "is"  # too short to strip
    assert set(content_words("The Moon's pull is orbiting the Earth")) == {"moon", "pull", "orbit", "earth"}


@pytest.mark.parametrize(
    "answer",
    [
        "The gravity of the Moon.",  # a phrase of the context
        "Mostly the Moon's gravity causes them.",  # paraphrase, one word of its own of 4
        "The cycle lasts about 24 hours and 50 minutes.",  # numbers that are there
        "Two high tides happen each day.",
    ],
)
def test_supported_answers_pass(answer: str) -> None:
    assert AnswerSupported().check(_rec(answer)) is None


def test_unsupported_answers_are_rejected_with_the_reason() -> None:
    block = AnswerSupported()
    reason = block.check(_rec("Strong winds blowing across the ocean surface push the water."))
    assert reason is not None and "not supported by its context" in reason
    assert "0 of 8 content words" in reason and "min_support 60%" in reason and "blowing" in reason
    assert block.check(_rec("The cycle takes 12 hours.")) == "the answer has a number its context lacks: 12"
    assert block.check(_rec("Yes.")) == "the answer has no content words to check against its context"
    assert (
        block.check(_rec("The Moon.", context="  "))
        == "the record has no 'context' text to check the answer against"
    )


def test_threshold_and_options() -> None:
    half = _rec("The Moon's gravity and strong winds.")  # moon, gravity of moon, gravity, strong, wind
    assert AnswerSupported(min_support=0.5).check(half) is None
    assert AnswerSupported(min_support=0.8).check(half) is not None
    assert AnswerSupported(check_numbers=False).check(_rec("The cycle takes 12 hours.")) is None
    custom = AnswerSupported(fields=["reply"], context_field="passage")
    assert custom.check({"reply": "The Moon's gravity.", "passage": CONTEXT}) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        AnswerSupported(min_support=1.5)


def test_it_is_a_registered_block() -> None:
    assert blocks.get("answer_supported") is AnswerSupported
