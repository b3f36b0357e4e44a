"""The ``conversation`` builder's task and records: multi-turn chats between a persona and
an assistant."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Literal

from fms_dgt import ConfigError, DataPoint, GenerationTask
from fms_dgt.builders.samplers import PersonaSampler
from fms_dgt.registry import did_you_mean

MAX_TURNS = 20
DEFAULT_END_PATTERN = r"(?i)\b(thanks|thank you|goodbye|bye)\b"


@dataclass(kw_only=True)
class Conversation(DataPoint):
    """One whole conversation: who the user is, the situation, and the OpenAI chat messages."""

    persona: str
    scenario: str
    messages: list[dict[str, str]]
    num_turns: int
    ended_by: str  # "length": the turns drawn for it; "controller": the controller ended it


class ConversationTask(GenerationTask):
    """Conversations: persona → scenario → ``min_turns``..``max_turns`` user/assistant
    exchanges, which the ``controller`` may end early (never before ``min_turns``).

    Keys: ``personas`` (a list of descriptions or mappings) or ``persona_sampler`` (the name
    of a sampler whose value is the persona; default: a sampler called ``persona``),
    ``min_turns``, ``max_turns``, ``controller`` (``rule``: end once the user's message
    matches ``end_pattern``; ``llm``: the model says whether the user is done; ``none``),
    ``end_pattern``, ``assistant_system`` (the assistant's system message) and
    ``trim_cut_answers`` (keep the complete sentences of an answer cut at max_tokens
    instead of rejecting the conversation)."""

    INPUT_DATA_TYPE = Conversation
    OUTPUT_DATA_TYPE = Conversation

    def __init__(
        self,
        *,
        personas: list[str | dict[str, Any]] | None = None,
        persona_sampler: str | None = None,
        min_turns: int = 2,
        max_turns: int = 3,
        controller: Literal["rule", "llm", "none"] = "rule",
        end_pattern: str = DEFAULT_END_PATTERN,
        assistant_system: str | None = None,
        trim_cut_answers: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= min_turns <= MAX_TURNS:
            raise self.error(f"'min_turns' must be between 1 and {MAX_TURNS}, got {min_turns}", "min_turns")
        if not 1 <= max_turns <= MAX_TURNS:
            raise self.error(f"'max_turns' must be between 1 and {MAX_TURNS}, got {max_turns}", "max_turns")
        if min_turns > max_turns:
            raise self.error(
                f"'min_turns' ({min_turns}) is above 'max_turns' ({max_turns})",
                "min_turns",
                hint="a conversation has between min_turns and max_turns exchanges",
            )
        try:
            self.end_regex = re.compile(end_pattern)
        except re.error as exc:
            raise self.error(
                f"'end_pattern' is not a valid regular expression: {exc}", "end_pattern"
            ) from None
        self.personas = self._personas(personas)
        self.persona_sampler = self._persona_sampler(persona_sampler, personas)
        self.min_turns = min_turns
        self.max_turns = max_turns
        self.controller = controller
        self.assistant_system = assistant_system.strip() if assistant_system else None
        self.trim_cut_answers = trim_cut_answers

    def error(self, message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        """A config error at ``keys`` of the task.yaml."""
        if self.yaml_doc is not None:
            return self.yaml_doc.error(message, *keys, hint=hint)
        return ConfigError(message, field=".".join(map(str, keys)) or None, hint=hint)

    def _personas(self, personas: list[str | dict[str, Any]] | None) -> list[str] | None:
        if personas is None:
            return None
        if not personas:
            raise self.error("'personas' is empty", "personas", hint="list at least one person")
        out = [describe(p) for p in personas]
        for i, text in enumerate(out):
            if not text:
                raise self.error(f"persona {i} is empty", "personas", i)
        return out

    def _persona_sampler(self, name: str | None, personas: list[Any] | None) -> str | None:
        samplers = self.samplers.specs if self.samplers else {}
        if personas is not None:
            if name is not None:
                raise self.error(
                    "give 'personas' or 'persona_sampler', not both", "persona_sampler", hint="remove one"
                )
            return None
        if name is None:
            found = [n for n, s in samplers.items() if isinstance(s, PersonaSampler)]
            name = "persona" if "persona" in samplers or not found else found[0]
        if name not in samplers:
            given = self.yaml_doc is not None and "persona_sampler" in self.yaml_doc.data
            key = "persona_sampler" if given else "data_builder"
            raise self.error(
                f"conversation needs personas, and there is no sampler '{name}'",
                key,
                hint=did_you_mean(name, samplers)
                or "add 'personas: [...]' or a sampler, e.g. samplers: {persona: {type: persona, path: personas.jsonl}}",
            )
        return name

    def persona(self, samples: dict[str, Any], rng: random.Random) -> str:
        """The persona of one conversation (from the list, or the sampler's value)."""
        if self.personas is not None:
            return rng.choice(self.personas)
        assert self.persona_sampler is not None
        return describe(samples[self.persona_sampler])

    def load_seed_examples(self) -> list[DataPoint]:
        """Conversations need no seeds: personas and scenarios drive them."""
        inline, store = self._seed_configs
        if inline or store is not None:
            raise self.error(
                "conversation takes no seed examples",
                "seed_examples" if inline else "seed_datastore",
                hint="remove them; steer the conversations with personas, samplers and task_description",
            )
        self.seed_examples = []
        return []

    def output_to_example(self, record: DataPoint) -> DataPoint | None:
        return None  # no in-context examples: nothing to keep in the pool


def describe(persona: Any) -> str:
    """A persona as text: a string as it is, a mapping as ``key: value`` pairs."""
    if isinstance(persona, dict):
        return "; ".join(f"{k}: {v}" for k, v in persona.items() if v not in (None, "")).strip()
    return str(persona).strip()
