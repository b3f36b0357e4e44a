"""IBM fms-dgt's ``core/conversation`` and ``public/rag/conversation`` task fields, read into
this builder's own settings (the task files of those builders run here unchanged).

Their pipeline is a list of stages (``initialization_stages``, ``iteration_stages``,
``termination_stages``, each ``{name, ...}``); each stage they have that does what a step of
ours does maps onto it:

================================  ==============================================================
``sample/persona``                ``personas`` (the rows of ``persona_store.data_path``, as text)
``lm/scenario``                   the scenario step; ``num_icl_examples`` = seed scenarios shown
``lm/scenario/rag``               the same, grounded: ``document_samplers`` names a
                                  ``tools.engines`` entry of ``type: search/file`` (the
                                  documents), ``k`` = ``grounding.documents_per_conversation``,
                                  ``group_by`` / ``strategy`` = ``grounding.group_by`` /
                                  ``group_strategy``
``lm/flow_controller[/rag]``      ``user_patterns`` (``patterns``) and ``end_patterns``
                                  (``termination_patterns``)
``lm/user/guided``, ``lm/user/rag``          the user step
``lm/assistant/naive``, ``lm/assistant/rag/static``   the assistant step
================================  ==============================================================

Keys that have no use here (``generator: generator`` - our engine blocks are fixed -,
``max_retries``...) are accepted with one warning each saying why; an unknown stage, a stage
we have no counterpart for, or a bad value is a located error. Problems are reported in
three rounds (stage names, then their keys, then the files they name), each round's all at
once, so the first message is about what matters most.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fms_dgt.config.messages import validated
from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.errors import ConfigError, Problems
from fms_dgt.registry import did_you_mean
from fms_dgt.sources.documents import DocumentsConfig, find_files

from .grounding import Grounding
from .patterns import UserPattern

log = logging.getLogger("fms_dgt.run")

Key = tuple[Any, ...]
Locate = Callable[..., ConfigError]

# passages of fms-dgt's whole documents given to the models (tokens = words, no overlap
# beyond a sentence's worth): three of them and a six-turn conversation fit the default
# model's 2048-token context. ``documents: {path, chunk_tokens}`` sets other sizes.
COMPAT_CHUNK_TOKENS = 120
COMPAT_OVERLAP_TOKENS = 12

UNUSED = {
    "generator": "the conversation builder's engine blocks do this: user_llm writes scenarios and "
    "user messages, llm1 answers (set their model in the builder YAML or with --engine)",
    "max_retries": "a failed request is retried by its engine (the engine's max_retries); answers are "
    "not re-asked after a faithfulness critic (add an answer_supported filter to check them)",
    "max_turns": "the task's max_turns bounds every conversation",
    "weight": "a task here has one document sampler, so there is nothing to weigh it against",
    "limit": "static grounding draws grounding.documents_per_conversation documents per conversation, "
    "it does not search",
    "error_categories": "injected retrieval failures belong to live retrieval, which has no counterpart here",
    "registry": "tools are called only by live retrieval (lm/assistant/rag), which has no counterpart here",
    "enrichments": "tool enrichments serve tool calling, which has no counterpart here",
    "component_tool_engines": "the documents come from the engine the document sampler names",
    "tools": "no stage here uses tools without lm/scenario/rag (they serve document samplers and live "
    "retrieval)",
}


class _Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    generator: str | None = None


class ScenarioStage(_Stage):
    num_icl_examples: int | None = Field(default=None, ge=0)


class DocumentSampler(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["search/random"]
    engine: str
    group_by: str | None = Field(default=None, min_length=1)
    strategy: Literal["uniform", "proportional"] = "uniform"
    weight: float = Field(default=1.0, ge=0)


class RagScenarioStage(ScenarioStage):
    document_samplers: list[DocumentSampler] = Field(min_length=1)
    k: int = Field(default=5, ge=1, le=20)
    component_tool_engines: Any = None


class PersonaStore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["default"] = "default"
    data_path: str | list[str]


class PersonaStage(_Stage):
    persona_store: PersonaStore


class FlowStage(_Stage):
    patterns: list[UserPattern] = Field(min_length=1)
    termination_patterns: list[str] = Field(default_factory=list)
    max_turns: int | None = Field(default=None, ge=1)


class UserStage(_Stage):
    pass


class AssistantStage(_Stage):
    max_retries: int | None = Field(default=None, ge=0)


INITIALIZATION, ITERATION = "initialization_stages", "iteration_stages"
# stage name -> (the list it belongs in, its keys, what it is here)
STAGES: dict[str, tuple[str, type[_Stage], str]] = {
    "lm/scenario": (INITIALIZATION, ScenarioStage, "scenario"),
    "lm/scenario/rag": (INITIALIZATION, RagScenarioStage, "scenario"),
    "sample/persona": (INITIALIZATION, PersonaStage, "persona"),
    "lm/flow_controller": (ITERATION, FlowStage, "flow"),
    "lm/flow_controller/rag": (ITERATION, FlowStage, "flow"),
    "lm/user/guided": (ITERATION, UserStage, "user"),
    "lm/user/rag": (ITERATION, UserStage, "user"),
    "lm/assistant/naive": (ITERATION, AssistantStage, "assistant"),
    "lm/assistant/rag/static": (ITERATION, AssistantStage, "assistant"),
}
NO_COUNTERPART = {
    "lm/assistant/rag": "fms-dgt's live-retrieval assistant (it calls a search tool every turn and the "
    "calls are part of the record), which has no counterpart here; 'lm/assistant/rag/static' answers "
    "from the documents drawn for the conversation",
}


class SearchFileEngine(BaseModel):
    """A ``tools.engines`` entry of ``type: search/file``: a JSON Lines (or JSON) file of
    documents. ``projection`` maps the file's field names to ``text`` and ``id``."""

    model_config = ConfigDict(extra="forbid")

    type: str
    path: str
    format: Literal["jsonl", "json"] = "jsonl"
    projection: dict[str, str] = Field(default_factory=dict)
    limit: int | None = Field(default=None, ge=1)
    error_categories: list[Any] | None = None


class Tools(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: list[Any] | None = None
    engines: dict[str, dict[str, Any]] = Field(default_factory=dict)
    enrichments: list[Any] | None = None


@dataclass
class FromStages:
    """What the stages say, in this builder's terms (None: they do not say)."""

    persona_paths: list[tuple[str | list[str], Key]] = field(default_factory=list)
    num_icl_examples: int | None = None
    documents: tuple[DocumentsConfig, Key] | None = None
    grounding: Grounding | None = None
    patterns: list[UserPattern] | None = None
    end_names: list[str] = field(default_factory=list)
    patterns_at: Key = ()
    ends_at: Key = ()


def read_stages(
    lists: dict[str, list[dict[str, Any]] | None],
    tools: dict[str, Any] | list[Any] | None,
    *,
    doc: YamlDoc | None,
    base_dir: Path,
    error: Locate,
) -> FromStages:
    """The settings fms-dgt's stage lists (``lists``: name -> list) and ``tools`` give."""
    named = _names(lists, error)
    out = FromStages()
    problems = Problems()
    unused: dict[str, list[Key]] = {}
    stages: dict[str, tuple[_Stage, Key]] = {}
    for key, raw in named:
        where, model, role = STAGES[raw["name"]]
        with problems.check():
            stage = validated(model, raw, doc, *key)
            stages[role] = (stage, key)
            for name in sorted(stage.model_fields_set & UNUSED.keys()):
                unused.setdefault(name, []).append((*key, name))
    problems.raise_if_any()
    if "persona" in stages:
        persona, key = stages["persona"]
        assert isinstance(persona, PersonaStage)
        out.persona_paths.append((persona.persona_store.data_path, (*key, "persona_store", "data_path")))
    if "flow" in stages:
        flow, key = stages["flow"]
        assert isinstance(flow, FlowStage)
        out.patterns, out.end_names = flow.patterns, flow.termination_patterns
        out.patterns_at, out.ends_at = (*key, "patterns"), (*key, "termination_patterns")
    if "scenario" in stages:
        scenario, key = stages["scenario"]
        assert isinstance(scenario, ScenarioStage)
        out.num_icl_examples = scenario.num_icl_examples
        if isinstance(scenario, RagScenarioStage):
            out.documents, out.grounding = _grounding(scenario, key, tools, doc, base_dir, error, unused)
    elif tools:
        unused.setdefault("tools", []).append(("tools",))
    assistant = stages.get("assistant")
    if assistant and assistant[0].name == "lm/assistant/rag/static" and out.documents is None:
        problems.add(
            error(
                "'lm/assistant/rag/static' answers from documents, and no stage draws any",
                *assistant[1],
                "name",
                hint="add an 'lm/scenario/rag' initialization stage with document_samplers",
            )
        )
    problems.raise_if_any()
    _warn(unused, doc)
    return out


def _names(lists: dict[str, list[dict[str, Any]] | None], error: Locate) -> list[tuple[Key, dict[str, Any]]]:
    """Every stage entry with its key, once every name is known and in its place (round 1)."""
    problems = Problems()
    out: list[tuple[Key, dict[str, Any]]] = []
    roles: dict[str, Key] = {}
    known = ", ".join(STAGES)
    for list_name, stages in lists.items():
        for i, raw in enumerate(stages or []):
            key = (list_name, i)
            name = raw.get("name") if isinstance(raw, dict) else None
            if not isinstance(name, str):
                problems.add(
                    error("a stage is a mapping with a 'name'", *key, hint=f"stages known here: {known}")
                )
                continue
            if name in NO_COUNTERPART:
                problems.add(error(f"stage '{name}' is {NO_COUNTERPART[name]}", *key, "name"))
                continue
            if name not in STAGES:
                close = did_you_mean(name, list(STAGES))
                problems.add(
                    error(
                        f"unknown stage '{name}'",
                        *key,
                        "name",
                        hint=f"{close} stages known here: {known}"
                        if close
                        else f"stages known here: {known}",
                    )
                )
                continue
            belongs, _, role = STAGES[name]
            if belongs != list_name:
                problems.add(error(f"'{name}' is one of the {belongs}, not {list_name}", *key, "name"))
                continue
            if role in roles:
                problems.add(
                    error(
                        f"a second {role} stage ('{name}'): a conversation has one",
                        *key,
                        "name",
                        hint=f"the first is {'.'.join(map(str, roles[role]))}",
                    )
                )
                continue
            roles[role] = key
            out.append((key, raw))
    if lists.get(ITERATION) is not None or lists.get(INITIALIZATION) is not None:
        for role in ("user", "assistant"):
            if role not in roles and not problems:
                names = " or ".join(n for n, (_, _, r) in STAGES.items() if r == role)
                problems.add(
                    error(
                        f"the stages have no {role} stage", ITERATION, hint=f"add {names} to iteration_stages"
                    )
                )
    problems.raise_if_any()
    return out


def _grounding(
    stage: RagScenarioStage,
    key: Key,
    tools: dict[str, Any] | list[Any] | None,
    doc: YamlDoc | None,
    base_dir: Path,
    error: Locate,
    unused: dict[str, list[Key]],
) -> tuple[tuple[DocumentsConfig, Key], Grounding]:
    """The documents and how they are drawn, from ``lm/scenario/rag`` and ``tools``."""
    if len(stage.document_samplers) > 1:
        raise error(
            "one document sampler per task here",
            *key,
            "document_samplers",
            1,
            hint="documents from several corpora: list their files under one documents.path",
        )
    sampler = stage.document_samplers[0]
    if "weight" in sampler.model_fields_set:
        unused.setdefault("weight", []).append((*key, "document_samplers", 0, "weight"))
    if tools is None or isinstance(tools, list):
        if isinstance(tools, list):
            unused.setdefault("registry", []).append(("tools",))
        raise error(
            f"document sampler engine '{sampler.engine}' is not defined",
            *key,
            "document_samplers",
            0,
            "engine",
            hint=f"add tools: {{engines: {{{sampler.engine}: {{type: search/file, path: documents.jsonl}}}}}}",
        )
    spec = validated(Tools, tools, doc, "tools")
    for name in ("registry", "enrichments"):
        if name in spec.model_fields_set:
            unused.setdefault(name, []).append(("tools", name))
    if sampler.engine not in spec.engines:
        raise error(
            f"document sampler engine '{sampler.engine}' is not one of tools.engines",
            *key,
            "document_samplers",
            0,
            "engine",
            hint=did_you_mean(sampler.engine, list(spec.engines))
            or f"engines: {', '.join(spec.engines) or 'none'}",
        )
    at = ("tools", "engines", sampler.engine)
    engine = validated(SearchFileEngine, spec.engines[sampler.engine], doc, *at)
    if engine.type != "search/file":
        raise error(
            f"engine type '{engine.type}' cannot ground conversations here: static grounding reads "
            "its documents from a file",
            *at,
            "type",
            hint="use type: search/file with path: <documents.jsonl>",
        )
    for name in sorted(engine.model_fields_set & UNUSED.keys()):
        unused.setdefault(name, []).append((*at, name))
    text_field = _projected(engine, "text", base_dir)
    id_field = _projected(engine, "id", base_dir)
    documents = DocumentsConfig(
        path=engine.path,
        text_field=text_field,
        chunk_tokens=COMPAT_CHUNK_TOKENS,
        overlap_tokens=COMPAT_OVERLAP_TOKENS,
    )
    grounding = Grounding(
        documents_per_conversation=stage.k,
        group_by=sampler.group_by,
        group_strategy=sampler.strategy,
        id_field=id_field,
    )
    return (documents, at), grounding


def _projected(engine: SearchFileEngine, canonical: str, base_dir: Path) -> str:
    """The file's field that fms-dgt's ``projection`` (file field -> ``text`` / ``id``) maps to
    ``canonical``; as in fms-dgt, the canonical name itself when the records lack that field."""
    mapped = [source for source, target in engine.projection.items() if target == canonical]
    if not mapped:
        return canonical
    try:
        from fms_dgt.datastores.readers import read_located_records

        first = next(iter(read_located_records(find_files(engine.path, base_dir)[0])), None)
    except (ConfigError, OSError, ValueError):
        return mapped[0]  # the documents source reports what is wrong with the file
    record = first[1] if first else {}
    return mapped[0] if mapped[0] in record or canonical not in record else canonical


def _warn(unused: dict[str, list[Key]], doc: YamlDoc | None) -> None:
    """One warning per unused key: where it is (its first place, and the lines of the others)
    and why it does nothing here."""
    for name, keys in unused.items():
        places = [doc.locate(*key) if doc else (None, None) for key in keys]
        first = f"{places[0][0]}:{places[0][1]}" if places[0][0] else ".".join(map(str, keys[0]))
        more = [str(line) for _, line in places[1:] if line]
        also = f" (also lines {', '.join(more)})" if more else ""
        log.warning("%s: field '%s' is accepted but not used%s: %s", first, name, also, UNUSED[name])
