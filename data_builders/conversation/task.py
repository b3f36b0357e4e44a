"""The ``conversation`` builder's task and records: multi-turn chats between a persona and
an assistant, optionally grounded in documents and steered by user patterns."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fms_dgt import ConfigError, DataPoint, GenerationTask
from fms_dgt.builders.samplers import PersonaSampler
from fms_dgt.datastores.readers import expand_paths, iter_source_records, read_located_records
from fms_dgt.registry import did_you_mean
from fms_dgt.sources.documents import DocumentsConfig, load_documents

from .fmsdgt import FromStages, read_stages
from .grounding import DocumentDraw, Grounding, Passage
from .patterns import PatternDraw, UserPattern

MAX_TURNS = 20
DEFAULT_END_PATTERN = r"(?i)\b(thanks|thank you|goodbye|bye)\b"
SCENARIO_ROLES = ("scenario", "rag/scenario")  # fms-dgt's scenario steps


@dataclass(kw_only=True)
class Conversation(DataPoint):
    """One whole conversation: who the user is, the situation, and the OpenAI chat messages;
    ``documents`` (``{id, title, text}``) when it is grounded in documents."""

    persona: str
    scenario: str
    messages: list[dict[str, str]]
    num_turns: int
    ended_by: str  # "length": the turns drawn for it; "controller": the controller ended it
    documents: list[dict[str, str]] = field(default_factory=list)


@dataclass(kw_only=True)
class ConversationSeed(DataPoint):
    """A seed: a scenario in the style wanted (shown to the scenario step) and, optionally,
    the person's messages in it (a grounded conversation's first message is shown examples
    of openings). fms-dgt's ConversationDataPoint rows are read into this."""

    scenario: str
    user_messages: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What conversation ``i`` is made of, drawn before any model call from
    ``runner_config.seed`` and ``i`` alone (a resumed run plans call ``i`` the same way): its
    persona, number of exchanges, documents, seed examples and pattern draws."""

    persona: str
    turns: int
    samples: dict[str, Any]
    details: dict[str, Any]  # the sampler values other than the persona
    passages: list[Passage]
    examples: list[ConversationSeed]
    patterns: PatternDraw | None
    min_turns: int
    rng: random.Random  # the pattern draws
    base_dir: Path

    def __post_init__(self) -> None:
        self.documents = [p.shown() for p in self.passages]

    def pattern(self, turn: int) -> UserPattern | None:
        """The pattern of user turn ``turn`` (None without patterns); end patterns only from
        ``min_turns`` on."""
        if self.patterns is None:
            return None
        return self.patterns.draw(self.rng, may_end=turn >= self.min_turns)

    def ends_with(self, pattern: UserPattern) -> bool:
        return self.patterns is not None and self.patterns.ends_with(pattern)

    def openings(self) -> list[str]:
        """Up to two seeds' first messages (examples of how a conversation opens)."""
        return [e.user_messages[0] for e in self.examples if e.user_messages][:2]

    def grounding(self) -> dict[str, Any]:
        return {"documents": self.documents} if self.documents else {}

    def lineage(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.passages:
            out["documents"] = [p.lineage(self.base_dir) for p in self.passages]
        if self.examples:
            out["icl_ids"] = [e.id for e in self.examples]
        return out


class ConversationTask(GenerationTask):
    """Conversations: persona → scenario → ``min_turns``..``max_turns`` user/assistant
    exchanges, which the ``controller`` may end early (never before ``min_turns``).

    Keys: ``personas`` (a list of descriptions or mappings) or ``persona_sampler`` (the name
    of a sampler whose value is the persona; default: a sampler called ``persona``),
    ``min_turns``, ``max_turns``, ``controller`` (``rule``: end once the user's message
    matches ``end_pattern``; ``llm``: the model says whether the user is done; ``none``;
    default ``rule``, or ``none`` when ``end_patterns`` end conversations), ``end_pattern``,
    ``assistant_system`` (the assistant's system message), ``trim_cut_answers`` (keep the
    complete sentences of an answer cut at max_tokens instead of rejecting the
    conversation), ``user_patterns`` (kinds of user message, drawn by weight each turn, whose
    hints steer the user model) and ``end_patterns`` (the names of those that end the
    conversation), ``documents`` and ``grounding`` (conversations about a few documents each).

    IBM fms-dgt's ``initialization_stages`` / ``iteration_stages`` / ``termination_stages``
    and ``tools`` are read into these (``fmsdgt.py``). Seed examples (optional) are scenarios
    in the style wanted: ``{scenario, user_messages}`` or fms-dgt's ConversationDataPoint rows.
    """

    INPUT_DATA_TYPE = ConversationSeed
    OUTPUT_DATA_TYPE = Conversation

    def __init__(
        self,
        *,
        personas: list[str | dict[str, Any]] | None = None,
        persona_sampler: str | None = None,
        min_turns: int = 2,
        max_turns: int = 3,
        controller: Literal["rule", "llm", "none"] | None = None,
        end_pattern: str = DEFAULT_END_PATTERN,
        assistant_system: str | None = None,
        trim_cut_answers: bool = False,
        user_patterns: list[UserPattern] | None = None,
        end_patterns: list[str] | None = None,
        documents: DocumentsConfig | None = None,
        grounding: Grounding | None = None,
        initialization_stages: list[dict[str, Any]] | None = None,
        iteration_stages: list[dict[str, Any]] | None = None,
        termination_stages: list[dict[str, Any]] | None = None,
        tools: dict[str, Any] | list[Any] | None = None,
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
        stages = FromStages()
        lists = {
            "initialization_stages": initialization_stages,
            "iteration_stages": iteration_stages,
            "termination_stages": termination_stages,
        }
        if any(v is not None for v in lists.values()) or tools is not None:
            stages = read_stages(lists, tools, doc=self.yaml_doc, base_dir=self.base_dir, error=self.error)
        self._not_both(stages, personas, persona_sampler, user_patterns, documents, grounding)
        if stages.persona_paths:
            self.personas: list[str] | None = self._persona_file(*stages.persona_paths[0])
        else:
            self.personas = self._personas(personas)
        self.persona_sampler = self._persona_sampler(persona_sampler, self.personas)
        self.patterns = self._patterns(stages, user_patterns, end_patterns)
        self.documents = self._documents(stages, documents, grounding)
        if stages.num_icl_examples is not None:
            self.runner_config.seed_batch_size = stages.num_icl_examples
        self.min_turns = min_turns
        self.max_turns = max_turns
        ends = self.patterns is not None and bool(self.patterns.ends)
        self.controller = controller or ("none" if ends else "rule")
        self.assistant_system = assistant_system.strip() if assistant_system else None
        self.trim_cut_answers = trim_cut_answers

    def _not_both(
        self,
        stages: FromStages,
        personas: Any,
        persona_sampler: Any,
        user_patterns: Any,
        documents: Any,
        grounding: Any,
    ) -> None:
        """Ours and fms-dgt's spelling of one setting are not given together."""
        pairs = [
            (bool(stages.persona_paths), "personas", personas, "sample/persona"),
            (bool(stages.persona_paths), "persona_sampler", persona_sampler, "sample/persona"),
            (stages.patterns is not None, "user_patterns", user_patterns, "a flow controller stage"),
            (stages.documents is not None, "documents", documents, "lm/scenario/rag"),
            (stages.documents is not None, "grounding", grounding, "lm/scenario/rag"),
        ]
        for from_stages, key, value, stage in pairs:
            if from_stages and value is not None:
                raise self.error(
                    f"'{key}' and {stage} say the same thing: give one of them", key, hint=f"remove '{key}'"
                )

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
                hint=did_you_mean(name, list(samplers))
                or "add 'personas: [...]' or a sampler, e.g. samplers: {persona: {type: persona, path: personas.jsonl}}",
            )
        return name

    def persona(self, samples: dict[str, Any], rng: random.Random) -> str:
        """The persona of one conversation (from the list, or the sampler's value)."""
        if self.personas is not None:
            return rng.choice(self.personas)
        assert self.persona_sampler is not None
        return describe(samples[self.persona_sampler])

    def _persona_file(self, paths: str | list[str], key: tuple[Any, ...]) -> list[str]:
        """fms-dgt's ``persona_store``: one persona per record of its files, as text."""
        try:
            files = expand_paths(paths, self.base_dir)
        except ConfigError as err:
            raise (self.yaml_doc.sub_error(err, *key) if self.yaml_doc else err) from None
        out = []
        for path in files:
            for line, record in read_located_records(path):
                text = describe(record)
                if not text:
                    raise ConfigError("this persona is empty", file=path, line=line or 1)
                out.append(text)
        if not out:
            raise self.error("the persona store holds no personas", *key, hint="add records to the file")
        return out

    def _patterns(
        self, stages: FromStages, patterns: list[UserPattern] | None, ends: list[str] | None
    ) -> PatternDraw | None:
        if stages.patterns is not None:
            return PatternDraw(
                stages.patterns, stages.end_names, self.error, stages.patterns_at, stages.ends_at
            )
        if patterns is None:
            if ends is not None:
                raise self.error(
                    "'end_patterns' name user patterns, and there are none",
                    "end_patterns",
                    hint="add user_patterns: [{name, hint, weight}, ...]",
                )
            return None
        if not patterns:
            raise self.error("'user_patterns' is empty", "user_patterns", hint="list at least one pattern")
        return PatternDraw(patterns, ends or [], self.error, ("user_patterns",), ("end_patterns",))

    def _documents(
        self, stages: FromStages, documents: DocumentsConfig | None, grounding: Grounding | None
    ) -> DocumentDraw | None:
        key: tuple[Any, ...] = ("documents",)
        if stages.documents is not None:
            documents, key = stages.documents
            grounding = stages.grounding
        if documents is None:
            if grounding is not None:
                raise self.error(
                    "'grounding' says how to draw documents, and there are none",
                    "grounding",
                    hint="add documents: {path: documents.jsonl}",
                )
            return None
        source = load_documents(documents, self.base_dir, self.yaml_doc, key)
        return DocumentDraw(source, grounding or Grounding(), self.base_dir)

    def plan(self, call_index: int) -> Plan:
        """Everything about conversation ``call_index`` that is drawn, not generated."""
        seed = self.runner_config.seed
        samples = self.draw_samples(call_index)
        rng = random.Random(f"{seed}:{call_index}:conversation")
        persona = self.persona(samples, rng)
        turns = rng.randint(self.min_turns, self.max_turns)
        if self.patterns is not None and self.patterns.ends:
            turns = self.max_turns  # the end patterns decide where it ends
        seeds = [s for s in self.seed_examples if isinstance(s, ConversationSeed)]
        pick = random.Random(f"{seed}:{call_index}:examples")
        return Plan(
            persona=persona,
            turns=turns,
            samples=samples,
            details={k: v for k, v in samples.items() if k != self.persona_sampler},
            passages=self.documents.draw(call_index, seed) if self.documents else [],
            examples=pick.sample(seeds, min(self.runner_config.seed_batch_size, len(seeds))),
            patterns=self.patterns,
            min_turns=self.min_turns,
            rng=random.Random(f"{seed}:{call_index}:patterns"),
            base_dir=self.base_dir,
        )

    def load_seed_examples(self) -> list[DataPoint]:
        """Optional seeds: scenarios in the style wanted, as ``{scenario, user_messages}`` or
        fms-dgt's ConversationDataPoint rows (``{conversation_id, steps: [...]}``, whose
        scenario step and user steps are read)."""
        inline, store = self._seed_configs
        seeds: list[DataPoint] = []
        doc_path = self.yaml_doc.path if self.yaml_doc else None
        for i, raw in enumerate(inline or []):
            source: tuple[Path | None, int | None] = (doc_path, None)
            keys: tuple[Any, ...] = ("seed_examples", i)
            row = self._seed_row(raw, source, keys)
            seeds.append(
                self._input_from(row, source=source, keys=keys, what=f"seed example {i}", is_seed=True)
            )
        if store is not None:
            for path, line, i, raw in iter_source_records(store, self.base_dir, self.yaml_doc):
                source, keys = (path, line), (f"record {i}",)
                row = self._seed_row(raw, source, keys)
                seeds.append(
                    self._input_from(row, source=source, keys=keys, what="seed example", is_seed=True)
                )
        self.seed_examples = seeds
        return seeds

    def _seed_row(self, raw: Any, source: tuple[Path | None, int | None], keys: tuple[Any, ...]) -> Any:
        """A seed as ``{scenario, user_messages}``; fms-dgt's ConversationDataPoint converted."""
        if not isinstance(raw, dict) or "scenario" in raw:
            return raw
        steps = raw.get("steps")
        if not isinstance(steps, list):
            raise self._located(
                f"a conversation seed needs a scenario; this one has {', '.join(map(str, raw)) or 'no keys'}",
                source,
                keys,
                hint="a seed is {scenario: ..., user_messages: [...]} or fms-dgt's ConversationDataPoint "
                "{conversation_id, steps: [{role: scenario, content: ...}, ...]}",
            )
        steps = [s for s in steps if isinstance(s, dict)]
        scenario = next((s.get("content") for s in steps if s.get("role") in SCENARIO_ROLES), None)
        if not isinstance(scenario, str) or not scenario.strip():
            raise self._located(
                "this conversation seed has no scenario step with text",
                source,
                keys,
                hint=f"its steps' roles: {', '.join(str(s.get('role')) for s in steps) or 'none'}",
            )
        users = [s["content"] for s in steps if s.get("role") == "user" and isinstance(s.get("content"), str)]
        return {"scenario": scenario.strip(), "user_messages": users}

    def output_to_example(self, record: DataPoint) -> DataPoint | None:
        return None  # generated conversations are not shown as examples


def _text(value: Any) -> str:
    """A persona's value as text: lists joined, mappings as ``key value`` pairs."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items() if v not in (None, ""))
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value if v not in (None, ""))
    return str(value).strip()


def describe(persona: Any) -> str:
    """A persona as text: a string as it is, a mapping as ``key: value`` pairs."""
    if isinstance(persona, dict):
        return "; ".join(
            f"{k}: {_text(v)}" for k, v in persona.items() if v not in (None, "", [], {})
        ).strip()
    return str(persona).strip()
