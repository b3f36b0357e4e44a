"""IBM fms-dgt's tool registry (``tools: {registry, engines, enrichments}``) read as the
``tool_calling`` builder's tools: every file the registry names, in order, in their three
shapes (a list of tools, ``{namespace: [tools]}``, ``{name: tool}``); a tool's
``output_parameters`` is our ``returns``. A missing file is reported (all of them) before any
file is read; a mistake inside a file is located in that file. Tools that cannot be offered
to a model are left out with one warning per file that counts them: a name an
OpenAI-compatible API refuses, or a name an earlier file already defined."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fms_dgt.config.yaml_loader import YamlDoc, load_yaml
from fms_dgt.errors import ConfigError, Problems
from fms_dgt.registry import did_you_mean

from .tools import NAME, Tool, parse_tools

log = logging.getLogger("fms_dgt.run")

Key = tuple[Any, ...]


class RegistryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["file"]
    path: str
    namespace: str | None = None
    engine: str


class ToolEngine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    lm_config: dict[str, Any] | None = None


class Tools(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: list[RegistryEntry] = Field(min_length=1)
    engines: dict[str, ToolEngine] = Field(default_factory=dict)
    enrichments: list[dict[str, Any]] | None = None


def registry_tools(
    spec: Tools, doc: YamlDoc | None, base_dir: Path, error: Any, unused: dict[str, list[Key]]
) -> list[Tool]:
    """The tools of every registry file, in order; missing files all reported before any is read."""
    problems = Problems()
    paths: list[Path] = []
    for i, entry in enumerate(spec.registry):
        key = ("tools", "registry", i)
        engine = spec.engines.get(entry.engine)
        if engine is None:
            close = did_you_mean(entry.engine, list(spec.engines))
            problems.add(
                error(
                    f"tool engine '{entry.engine}' is not one of tools.engines",
                    *key,
                    "engine",
                    hint=close or f"engines: {', '.join(spec.engines) or 'none'}",
                )
            )
        elif engine.type != "lm":
            problems.add(
                error(
                    f"tool engine type '{engine.type}' has no counterpart here: tools are simulated by a model "
                    "(type: lm), or run for real by tool_calling with tool_execution: sandbox",
                    "tools",
                    "engines",
                    entry.engine,
                    "type",
                    hint="a REST tool is a tool with endpoint: http://... in a tools file of ours",
                )
            )
        elif engine.lm_config is not None:
            at = ("tools", "engines", entry.engine, "lm_config")
            if at not in unused.get("lm_config", []):
                unused.setdefault("lm_config", []).append(at)
        if entry.namespace is not None:
            unused.setdefault("namespace", []).append((*key, "namespace"))
        path = Path(os.path.expandvars(entry.path))
        if not path.is_absolute():  # the task.yaml's folder, then (as theirs) the working directory
            path = base_dir / path if (base_dir / path).is_file() or not path.is_file() else path.resolve()
        if not path.is_file():
            looked = f" (looked for {path})" if str(path) != entry.path else ""
            problems.add(error(f"no tools file '{entry.path}'{looked}", *key, "path"))
        paths.append(path)
    problems.raise_if_any()
    tools: list[Tool] = []
    seen: set[str] = set()
    for i, path in enumerate(paths):
        read, invalid = _read_file(path)
        again = [t.name for t in read if t.name in seen]
        tools += [t for t in read if t.name not in seen]
        seen.update(t.name for t in read)
        where = ":".join(map(str, doc.locate("tools", "registry", i, "path"))) if doc else str(path)
        for why, names in (
            ("names an OpenAI-compatible API refuses", invalid),
            ("defined by an earlier file", again),
        ):
            if names:
                shown = ", ".join(sorted(set(names))[:5])
                log.warning(
                    "%s: %d tools of %s left out (%s), e.g. %s", where, len(names), path.name, why, shown
                )
    if not tools:
        raise error("the tool files hold no tools", "tools", "registry")
    return tools


def _read_file(path: Path) -> tuple[list[Tool], list[str]]:
    """One of their tool files as our tools, and the names left out (not valid names for
    an OpenAI-compatible API); their three shapes: a list of tools, ``{namespace: [tools]}``,
    ``{name: tool}``. Problems are located in that file."""
    tools_doc = load_yaml(path)
    raw = tools_doc.data
    keys: list[Key]
    if isinstance(raw, dict) and raw and isinstance(next(iter(raw.values())), list):
        namespace = next(iter(raw))
        entries, keys = raw[namespace], [(namespace, i) for i in range(len(raw[namespace]))]
    elif isinstance(raw, dict):
        entries, keys = list(raw.values()), [(k,) for k in raw]
    elif isinstance(raw, list):
        entries, keys = raw, [(i,) for i in range(len(raw))]
    else:
        raise tools_doc.error("a tools file is a list of tools or a mapping of name -> tool")
    ours: list[dict[str, Any]] = []
    places: list[Key] = []
    skipped: list[str] = []
    for entry, key in zip(entries, keys):
        if not isinstance(entry, dict) or "name" not in entry:
            raise tools_doc.error("a tool is a mapping with a 'name'", *key)
        if not isinstance(entry["name"], str) or not NAME.match(entry["name"]):
            skipped.append(str(entry["name"]))
            continue
        function = {k: entry[k] for k in ("name", "description", "parameters") if k in entry}
        function.setdefault("parameters", {"type": "object", "properties": {}})
        ours.append({"type": "function", "function": function, **_returns(entry)})
        places.append(key)

    def error_at(message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        """Our keys (index, ``function``/``returns``, ...) as theirs in their file."""
        if not keys or not isinstance(keys[0], int):
            return tools_doc.error(message, hint=hint)
        inner = list(keys[1:])
        if inner[:1] == ["function"]:
            inner = inner[1:]
        elif inner[:1] == ["returns"]:
            inner = ["output_parameters", *inner[1:]]
        return tools_doc.error(message, *places[keys[0]], *inner, hint=hint)

    return parse_tools(ours, error_at, [], check_imports=False, simulated=True), skipped


def _returns(entry: dict[str, Any]) -> dict[str, Any]:
    """Their ``output_parameters`` as our ``returns`` (an empty schema says nothing)."""
    schema = entry.get("output_parameters")
    return {"returns": schema} if schema else {}
