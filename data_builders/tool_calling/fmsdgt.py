"""IBM fms-dgt's ``tool_calling/multi_turn/stateless`` task fields, read into the
``tool_calling`` builder's own settings, so that their task files run here unchanged.

Their builder simulates every tool with a model and builds a conversation in stages; each
field of theirs that means what one of ours means maps onto it:

====================================================  =========================================
``tools.registry: [{type: file, path, namespace,       the tools (``tool_execution: simulated``);
engine}]`` with ``tools.engines.<e>: {type: lm}``     a tool's ``output_parameters`` is our
                                                      ``returns``
``has_nested: true | false``                          ``max_steps: 2 | 1``
``min_turns``, ``max_turns``                          the same keys
``sample/persona`` with ``persona_store.data_path``   a ``persona`` sampler of that file
``.../scenario_generator`` ``sampler_mix[0].k``       ``tools_per_conversation``
``.../verifier`` among the iteration stages           ``judge: true`` (absent: ``false``)
``.../planner``, ``user``, ``execute``, ``summarize`` the steps of every turn
====================================================  =========================================

Fields with no use here are accepted with one warning each saying why; an unknown stage, a
tool engine other than a model, a missing tools or persona file, or a bad value is a located
error. Their tool files are read by ``fmsdgt_tools.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fms_dgt.builders.samplers import PersonaSampler
from fms_dgt.config.messages import validated
from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.errors import ConfigError, Problems
from fms_dgt.registry import did_you_mean

from .fmsdgt_tools import Tools, registry_tools
from .tools import Tool

log = logging.getLogger("fms_dgt.run")

Key = tuple[Any, ...]
FMSDGT_TOOL_KEYS = {"registry", "engines", "enrichments"}
STAGE = "tool_calling/multi_turn/stages/"
INITIALIZATION = {"sample/persona": "persona", STAGE + "scenario_generator": "scenario"}
ITERATION = {STAGE + n: n for n in ("planner", "user", "verifier", "execute", "summarize")}
REQUIRED = ("planner", "user")

# top-level fields of theirs the task class accepts and does not use (task_file warns)
UNUSED_TOP = {
    "separate_context": "the user's message is written with the values the first calls need; values a later "
    "call needs come from earlier results when max_steps > 1 (has_nested: true), so there is no hidden "
    "context to keep apart",
    "termination_stages": "fms-dgt's conversation filter and injected error hints have no counterpart: "
    "each turn is checked as it is made (the calls' schemas, the simulated results' schemas, the judge) "
    "and a conversation failing a check is rejected with the reason",
}
UNUSED = {
    "generator": "the builder's engine blocks do this job: llm1 writes the requests, calls and answers, "
    "tool_sim plays the tools, judge verifies (set their model in the builder YAML, an override file or "
    "--engine)",
    "lm_config": "the tool_sim engine block plays every tool (set its model in the builder YAML, an "
    "override file or --engine)",
    "namespace": "tools are named by their own names, as an OpenAI-compatible API calls them; a name "
    "an earlier file already defined is left out (counted in a warning)",
    "enrichments": "no model writes output schemas or embeddings here: a tool's own output_parameters "
    "steer its simulated results, and tools are drawn at random",
    "min_score": "tools are drawn at random here, not by embedding similarity",
    "sampler": "tools are drawn at random here (tools_per_conversation of them): the neighbour, chain "
    "and fan-in/fan-out samplers need embeddings and data-flow graphs this builder does not compute",
    "weight": "one tool sampler per task here (the first of sampler_mix)",
}
NO_EXECUTE = (
    "every turn here still runs its calls (simulated) and ends with the assistant's answer, which "
    "the records keep; the tool_calls formatter (their single_turn) leaves results and answers out"
)


class _Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    generator: str | None = None


class PersonaStore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["default"] = "default"
    data_path: str


class PersonaStage(_Stage):
    persona_store: PersonaStore


class ToolSampler(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["tc/random", "tc/neighbor", "tc/chain", "tc/fan_in", "tc/fan_out"]
    k: int = Field(default=5, ge=1)
    min_score: float | None = None


class SamplerMix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sampler: ToolSampler
    weight: float = Field(default=1.0, ge=0)


class ScenarioStage(_Stage):
    sampler_mix: list[SamplerMix] = Field(default_factory=list)


STAGE_MODELS: dict[str, type[_Stage]] = {"persona": PersonaStage, "scenario": ScenarioStage}


@dataclass
class FromFmsDgt:
    """What their fields say, in this builder's terms."""

    tools: list[Tool]
    max_steps: int
    judge: bool
    tools_per_conversation: int | None = None
    persona: PersonaSampler | None = None
    unused: dict[str, list[Key]] = field(default_factory=dict)


def read_fmsdgt(
    tools: Any,
    initialization: list[dict[str, Any]] | None,
    iteration: list[dict[str, Any]] | None,
    has_nested: bool | None,
    *,
    doc: YamlDoc | None,
    base_dir: Path,
    given: dict[str, Any],
) -> FromFmsDgt:
    """The settings their ``tools``, stage lists and ``has_nested`` give; ``given``: our own
    keys the task file also set (an error when theirs say the same thing)."""

    def error(message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        if doc is None:
            return ConfigError(message, field=".".join(map(str, keys)) or None, hint=hint)
        return doc.error(message, *keys, hint=hint)

    for ours, theirs in (
        ("max_steps", "has_nested"),
        ("judge", "iteration_stages"),
        ("tool_execution", "tools"),
    ):
        if given.get(ours) is not None:
            raise error(
                f"'{ours}' and IBM fms-dgt's '{theirs}' both set this; give one",
                ours,
                hint=f"with fms-dgt's fields, '{theirs}' decides it (docs/migrating_from_fms_dgt.md)",
            )
    unused: dict[str, list[Key]] = {}
    stages = _stages(initialization, iteration, doc, error, unused)
    if not isinstance(tools, dict):
        raise error(
            "IBM fms-dgt's stages need their tools: {registry: [{type: file, path, engine}], engines}",
            "tools" if tools is not None else "iteration_stages",
        )
    spec = validated(Tools, tools, doc, "tools")
    if spec.enrichments is not None:
        unused.setdefault("enrichments", []).append(("tools", "enrichments"))
    out = FromFmsDgt(
        tools=registry_tools(spec, doc, base_dir, error, unused),
        max_steps=2 if has_nested else 1,
        judge="verifier" in stages,
        unused=unused,
    )
    scenario = stages.get("scenario")
    if scenario is not None:
        stage, key = scenario
        assert isinstance(stage, ScenarioStage)
        if stage.sampler_mix:
            first = stage.sampler_mix[0]
            out.tools_per_conversation = first.sampler.k
            if first.sampler.type != "tc/random":
                unused.setdefault("sampler", []).append((*key, "sampler_mix", 0, "sampler", "type"))
            if first.sampler.min_score is not None:
                unused.setdefault("min_score", []).append((*key, "sampler_mix", 0, "sampler", "min_score"))
            if len(stage.sampler_mix) > 1 or "weight" in first.model_fields_set:
                unused.setdefault("weight", []).append((*key, "sampler_mix"))
    persona = stages.get("persona")
    if persona is not None:
        stage, key = persona
        assert isinstance(stage, PersonaStage)
        out.persona = _personas(
            stage.persona_store.data_path, base_dir, doc, (*key, "persona_store", "data_path")
        )
    missing = [n for n in ("execute", "summarize") if n not in stages]
    if iteration is not None and missing:
        where = ":".join(map(str, doc.locate("iteration_stages"))) if doc else "iteration_stages"
        log.warning("%s: the iteration stages have no %s stage: %s", where, " or ".join(missing), NO_EXECUTE)
    warn(unused, doc)
    return out


def _stages(
    initialization: list[dict[str, Any]] | None,
    iteration: list[dict[str, Any]] | None,
    doc: YamlDoc | None,
    error: Any,
    unused: dict[str, list[Key]],
) -> dict[str, tuple[_Stage, Key]]:
    """Their stages by role (``persona``, ``scenario``, ``planner``...), every problem at once."""
    problems = Problems()
    out: dict[str, tuple[_Stage, Key]] = {}
    for list_name, known in (("initialization_stages", INITIALIZATION), ("iteration_stages", ITERATION)):
        other = ITERATION if known is INITIALIZATION else INITIALIZATION
        for i, raw in enumerate((initialization if known is INITIALIZATION else iteration) or []):
            key = (list_name, i)
            name = raw.get("name") if isinstance(raw, dict) else None
            if not isinstance(name, str):
                problems.add(
                    error("a stage is a mapping with a 'name'", *key, hint=f"stages: {', '.join(known)}")
                )
                continue
            if name not in known:
                where = (
                    f"'{name}' is one of the other list's stages"
                    if name in other
                    else f"unknown stage '{name}'"
                )
                close = did_you_mean(name, list(known))
                hint = f"{close} " if close else ""
                problems.add(
                    error(where, *key, "name", hint=f"{hint}{list_name} known here: {', '.join(known)}")
                )
                continue
            role = known[name]
            if role in out:
                problems.add(error(f"stage '{name}' is given twice", *key, "name"))
                continue
            model: type[_Stage] = STAGE_MODELS.get(role, _Stage)
            with problems.check():
                stage: _Stage = validated(model, raw, doc, *key)
                out[role] = (stage, key)
                if stage.generator is not None:
                    unused.setdefault("generator", []).append((*key, "generator"))
    if iteration is not None and not problems:
        for role in REQUIRED:
            if role not in out:
                problems.add(
                    error(
                        f"the iteration stages have no {role} stage",
                        "iteration_stages",
                        hint=f"add {STAGE}{role}",
                    )
                )
    problems.raise_if_any()
    return out


def _personas(data_path: str, base_dir: Path, doc: YamlDoc | None, key: Key) -> PersonaSampler:
    """Their persona store as a ``persona`` sampler; read once here so that a missing or
    empty file is an error at ``data_path``."""
    if not Path(data_path).is_absolute() and not (base_dir / data_path).exists() and Path(data_path).exists():
        data_path = str(Path(data_path).resolve())  # as theirs: from the working directory
    sampler = PersonaSampler(type="persona", path=data_path)
    try:
        sampler.load(base_dir)
    except ConfigError as err:
        raise (doc.sub_error(err, *key) if doc else err) from None
    return sampler


def warn(unused: dict[str, list[Key]], doc: YamlDoc | None) -> None:
    """One warning per unused field: where it is first (with the other lines) and why."""
    for name, keys in unused.items():
        places = [doc.locate(*key) if doc else (None, None) for key in keys]
        first = f"{places[0][0]}:{places[0][1]}" if places[0][0] else ".".join(map(str, keys[0]))
        more = sorted({str(line) for _, line in places[1:] if line})
        also = f" (also lines {', '.join(more)})" if more else ""
        log.warning("%s: field '%s' is accepted but not used%s: %s", first, name, also, UNUSED[name])
