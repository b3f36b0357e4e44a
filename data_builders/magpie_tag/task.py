"""Task and record types of the ``magpie_tag`` builder: every input row tagged the Magpie
way (input quality, difficulty, task category, response quality), optionally filtered on
its tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.registry import did_you_mean

Quality = Literal["very poor", "poor", "average", "good", "excellent"]
Difficulty = Literal["very easy", "easy", "medium", "hard", "very hard"]
Category = Literal[
    "Information seeking",
    "Reasoning",
    "Planning",
    "Editing",
    "Coding & Debugging",
    "Math",
    "Role playing",
    "Data analysis",
    "Creative writing",
    "Advice seeking",
    "Brainstorming",
    "Others",
]
Score = Literal[1, 2, 3, 4, 5]

# tag family -> its labels (what filter_criteria may ask for); one model call per family
FAMILIES: dict[str, tuple[str, ...]] = {
    "input_quality": get_args(Quality),
    "difficulty": get_args(Difficulty),
    "task_category": get_args(Category),
    "sample_quality": tuple(str(s) for s in get_args(Score)),
}
# the keys of ``magpie_tags`` (None where a family was not asked for or does not apply)
TAG_KEYS = (
    "input_quality",
    "input_quality_explanation",
    "difficulty",
    "intent",
    "knowledge",
    "task_category",
    "other_task_categories",
    "judge_quality_score",
    "judge_quality_explanation",
)
# where each filter criterion reads its value in ``magpie_tags``
CRITERION_TAG = {
    "input_quality": "input_quality",
    "difficulty": "difficulty",
    "task_category": "task_category",
    "sample_quality": "judge_quality_score",
}
SHAPES = ("question", "instruction", "messages")  # what an input row must have one of
ROLES = ("system", "user", "assistant")


@dataclass(kw_only=True)
class Row(DataPoint):
    """An input row: its request (``question``/``instruction``, or the first user message of
    ``messages``), the response if it has one, the messages of a conversation, and the whole
    row as it came (``row``)."""

    instruction: str = ""
    response: str | None = None
    messages: list[dict[str, Any]] | None = None
    row: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class TaggedRow(DataPoint):
    """The input row (``row``, whole) with its ``magpie_tags`` and the model that tagged it."""

    instruction: str
    response: str | None
    messages: list[dict[str, Any]] | None
    row: dict[str, Any]
    magpie_tags: dict[str, Any]
    model_name: str | None = None


class MagpieTagTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``tags``: the tag families to ask for (default all): ``input_quality`` (with an
      explanation), ``difficulty`` (with the user's intent and the knowledge needed),
      ``task_category`` and ``sample_quality`` (a 1-5 judge score of the response).
    - ``filter_criteria``: keep only rows whose tags are among the labels given, e.g.
      ``{input_quality: [good, excellent], sample_quality: ["4", "5"]}`` (keys:
      input_quality, difficulty, task_category, sample_quality); the others are rejected
      with the reason.
    """

    INPUT_DATA_TYPE = Row
    OUTPUT_DATA_TYPE = TaggedRow

    def __init__(
        self,
        *,
        tags: list[str] | None = None,
        filter_criteria: dict[str, list[str | int]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tags = self._tags(tags)
        self.filter_criteria = self._criteria(filter_criteria or {})

    # ---- checking the keys ----------------------------------------------------------------
    def _tags(self, given: list[str] | None) -> list[str]:
        if given is None:
            return list(FAMILIES)
        if not given:
            raise self.config_error("tags is empty", "tags", hint=f"name some of: {', '.join(FAMILIES)}")
        for i, name in enumerate(given):
            if name not in FAMILIES:
                raise self.config_error(
                    f"unknown tag family '{name}'",
                    "tags",
                    i,
                    hint=did_you_mean(name, list(FAMILIES)) or f"tag families: {', '.join(FAMILIES)}",
                )
            if given.index(name) != i:
                raise self.config_error(f"tag family '{name}' is listed twice", "tags", i)
        return [f for f in FAMILIES if f in given]

    def _criteria(self, given: dict[str, list[str | int]]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for key, labels in given.items():
            if key not in FAMILIES:
                raise self.config_error(
                    f"unknown filter criterion '{key}'",
                    "filter_criteria",
                    key,
                    hint=did_you_mean(key, list(FAMILIES)) or f"criteria: {', '.join(FAMILIES)}",
                )
            if key not in self.tags:
                raise self.config_error(
                    f"filter_criteria names {key}, which tags leaves out",
                    "filter_criteria",
                    key,
                    hint=f"add {key} to tags, or drop this criterion",
                )
            if not labels:
                raise self.config_error(
                    f"filter_criteria.{key} is empty: no row could be kept", "filter_criteria", key
                )
            allowed = FAMILIES[key]
            by_lower = {a.lower(): a for a in allowed}
            chosen: set[str] = set()
            for i, label in enumerate(labels):
                text = str(label).strip()
                if text.lower() not in by_lower:
                    raise self.config_error(
                        f"'{text}' is not one of the {key} labels",
                        "filter_criteria",
                        key,
                        i,
                        hint=did_you_mean(text, list(allowed)) or f"labels: {', '.join(allowed)}",
                    )
                chosen.add(by_lower[text.lower()])
            out[key] = chosen
        return out

    # ---- rows -----------------------------------------------------------------------------
    def _input_from(
        self,
        raw: Any,
        *,
        source: tuple[Path | None, int | None],
        keys: tuple[Any, ...],
        what: str,
        **extra: Any,
    ) -> DataPoint:
        """A row must have a question, an instruction or messages (each checked here, so a
        bad one is reported at its file and line with what is wrong)."""
        if isinstance(raw, dict):
            problem = row_problem(raw)
            if problem is not None:
                message, hint = problem
                raise self._located(f"{what} {message}", source, keys, hint)
        return super()._input_from(raw, source=source, keys=keys, what=what, **extra)

    def instantiate_input_example(self, **kwargs: Any) -> DataPoint:
        """The row's request and response in our names; every column kept in ``row``."""
        row = dict(kwargs)
        messages = row.get("messages")
        if messages is not None:
            users = [m["content"] for m in messages if m["role"] == "user"]
            answers = [m["content"] for m in messages if m["role"] == "assistant"]
            instruction, response = users[0], (answers[-1] if answers else None)
        else:
            instruction = row["question"] if "question" in row else row["instruction"]
            response = row.get("answer", row.get("response"))
        return Row(
            task_name=self.task_name,
            instruction=instruction,
            response=response if isinstance(response, str) and response.strip() else None,
            messages=messages,
            row=row,
        )

    def _note_unknown_keys(self, raw: dict[str, Any], source: Any, keys: Any, what: str) -> None:
        """Every column is kept (in ``row``): none is ignored, so there is nothing to warn of."""

    # ---- the filter -----------------------------------------------------------------------
    def unmet(self, tags: dict[str, Any]) -> str | None:
        """Why ``tags`` fail ``filter_criteria`` (None when they meet it)."""
        for key, allowed in self.filter_criteria.items():
            value = tags.get(CRITERION_TAG[key])
            if value is None:
                return f"no {key} tag to filter on (the row has no response to judge)"
            if str(value) not in allowed:
                wanted = ", ".join(a for a in FAMILIES[key] if a in allowed)
                return f"{key} '{value}' is not among the labels kept ({wanted})"
        return None


def row_problem(raw: dict[str, Any]) -> tuple[str, str] | None:
    """(what is wrong, a hint) with an input row, or None."""
    columns = ", ".join(str(k) for k in raw) or "none"
    if not any(k in raw for k in SHAPES):
        return (
            "has no question, instruction or messages",
            f"its columns: {columns}; map one with data: {{columns: {{question: <column>}}}}",
        )
    if "messages" in raw:
        messages = raw["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return "has messages that are not a list of {role, content} mappings", "OpenAI chat format"
        for i, m in enumerate(messages):
            if m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                return (
                    f"has a message {i} without a role ({', '.join(ROLES)}) and a text content",
                    "OpenAI chat format: {role: user, content: ...}",
                )
        if not any(m["role"] == "user" and m["content"].strip() for m in messages):
            return "has no user message", "a conversation to tag starts with what the user asks"
        return None
    key = "question" if "question" in raw else "instruction"
    if not isinstance(raw[key], str) or not raw[key].strip():
        return f"has an empty {key}", "the request to tag"
    return None
