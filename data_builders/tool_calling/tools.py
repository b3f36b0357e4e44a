"""Tool definitions of the ``tool_calling`` builder: reading them (from a YAML/JSON file or
inline in the task.yaml), checking them at ``--validate`` time, and checking a call against
them.

A tool is an OpenAI function tool plus how to run it::

    - type: function
      function:
        name: convert_units
        description: Convert a value between units of length.
        parameters: {type: object, properties: {...}, required: [...]}
      implementation: units:convert     # module:function, run in the sandbox
      # or: endpoint: http://127.0.0.1:8080/convert   (POST of the JSON arguments)
      # returns: {type: object, ...}    # optional: a JSON schema of the result

With ``tool_execution: simulated`` a tool has neither ``implementation`` nor ``endpoint``:
a model plays it, and ``returns`` (when given) is the schema its results must validate
against.

Everything that can be wrong in a definition is found before any model is loaded, and
reported at its line: a parameters schema that is not a valid JSON schema, a duplicated
name, an implementation whose module cannot be found or does not define the function.
The implementation's module is located without importing it (``importlib`` finders plus a
look at its source), so no tool code runs outside the sandbox.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from fms_dgt.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what the OpenAI API accepts
TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
SCHEMA_HINT = "see https://json-schema.org/understanding-json-schema (draft 2020-12)"
TYPE_HINT = "a JSON schema type is one of: string, number, integer, boolean, object, array, null"
TOOL_KEYS = ("type", "function", "implementation", "endpoint", "returns")
FUNCTION_KEYS = ("name", "description", "parameters")

# (message, keys inside the tools list, hint) -> a located ConfigError
ErrorAt = Callable[..., ConfigError]


@dataclass(frozen=True)
class Tool:
    """One tool: its OpenAI definition (what the model is shown) and how to run it."""

    name: str
    description: str
    parameters: dict[str, Any]
    implementation: str | None = None
    endpoint: str | None = None
    returns: dict[str, Any] | None = None  # a JSON schema of the result, when declared

    @property
    def brief(self) -> str:
        """The tool as the prompts list it: its name, the first sentence of its description
        and one clause per argument (type, required, allowed values).
        Far shorter than the JSON schema (fifteen tools fit a small model's context); the
        schema itself steers the decoding of the calls and checks them."""
        required = set(self.parameters.get("required") or [])
        clauses = [
            _argument(name, spec if isinstance(spec, dict) else {}, name in required)
            for name, spec in (self.parameters.get("properties") or {}).items()
        ]
        arguments = ", ".join(clauses) if clauses else "none"
        return f"{self.name}: {_first_sentence(self.description, 120)} Arguments: {arguments}"

    @property
    def definition(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry, as given to the model and kept on each record."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def _first_sentence(text: str, limit: int) -> str:
    text = " ".join(text.split())
    end = re.search(r"[.!?](\s|$)", text)
    text = text[: end.end()].strip() if end else text
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _bare(schema: Any) -> Any:
    """``schema`` without its descriptions (a nested schema shown in a prompt)."""
    if isinstance(schema, dict):
        return {k: _bare(v) for k, v in schema.items() if k not in ("description", "title", "examples")}
    if isinstance(schema, list):
        return [_bare(v) for v in schema]
    return schema


def _argument(name: str, spec: dict[str, Any], required: bool) -> str:
    """``name (type, required, one of a | b)`` for a prompt; a nested object or array shows
    its schema as JSON (without descriptions). Argument descriptions are left out: with a
    dozen tools they would not fit a small model's context."""
    kind = spec.get("type", "any")
    parts = [" or ".join(kind) if isinstance(kind, list) else str(kind)]
    if required:
        parts.append("required")
    if isinstance(spec.get("enum"), list):
        parts.append("one of " + " | ".join(json.dumps(v) for v in spec["enum"]))
    if kind in ("object", "array") and ("properties" in spec or "items" in spec):
        nested = {k: v for k, v in spec.items() if k in ("properties", "items", "required")}
        parts.append("schema " + json.dumps(_bare(nested))[:200])
    return f"{name} ({', '.join(parts)})"


def parse_tools(
    entries: Any,
    error_at: ErrorAt,
    search_path: list[Path],
    check_imports: bool = True,
    simulated: bool = False,
) -> list[Tool]:
    """Tools from the loaded list ``entries``; ``error_at(message, *keys, hint=...)`` makes
    an error located at ``keys`` (an index, then keys inside that tool). ``simulated``:
    the tools are played by a model, so they must not name a way to run them."""
    if not isinstance(entries, list) or not entries:
        raise error_at("the tools must be a non-empty list of function tools", hint=_SHAPE_HINT)
    tools: list[Tool] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        tool = _parse_one(entry, i, error_at, simulated)
        if tool.name in seen:
            raise error_at(
                f"tool name '{tool.name}' is used twice (tools {seen[tool.name]} and {i})",
                i,
                "function",
                "name",
                hint="every tool needs its own name: the model calls tools by name",
            )
        seen[tool.name] = i
        if check_imports and tool.implementation is not None:
            problem = implementation_problem(tool.implementation, search_path)
            if problem:
                raise error_at(
                    f"tool '{tool.name}': implementation '{tool.implementation}' {problem}",
                    i,
                    "implementation",
                    hint="a module path is relative to the tools file's folder (or the task's)",
                )
        tools.append(tool)
    return tools


_SHAPE_HINT = (
    "each tool: {type: function, function: {name, description, parameters}, implementation: module:function}"
)


def _parse_one(entry: Any, i: int, error_at: ErrorAt, simulated: bool = False) -> Tool:
    if not isinstance(entry, dict):
        raise error_at(f"tool {i} must be a mapping, got {type(entry).__name__}", i, hint=_SHAPE_HINT)
    for key in entry:
        if key not in TOOL_KEYS:
            raise error_at(
                f"unknown key '{key}' in tool {i}", i, key, hint=f"a tool has keys {', '.join(TOOL_KEYS)}"
            )
    if entry.get("type", "function") != "function":
        raise error_at(f"tool {i}: type must be 'function', got {entry['type']!r}", i, "type")
    function = entry.get("function")
    if not isinstance(function, dict):
        raise error_at(f"tool {i} has no 'function' mapping", i, hint=_SHAPE_HINT)
    for key in function:
        if key not in FUNCTION_KEYS:
            raise error_at(
                f"unknown key '{key}' in tool {i}'s function",
                i,
                "function",
                key,
                hint=f"a function has keys {', '.join(FUNCTION_KEYS)}",
            )
    name = function.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise error_at(
            f"tool {i}: function name must be 1 to 64 letters, digits, '_' or '-', got {name!r}",
            i,
            "function",
            "name",
        )
    description = function.get("description", "")
    if not isinstance(description, str):
        raise error_at(f"tool '{name}': description must be text", i, "function", "description")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    _check_parameters(name, parameters, i, error_at)
    returns = entry.get("returns")
    if returns is not None:
        _check_schema(name, returns, error_at, i, "returns")
    implementation, endpoint = entry.get("implementation"), entry.get("endpoint")
    if simulated:
        if implementation is not None or endpoint is not None:
            key = "implementation" if implementation is not None else "endpoint"
            raise error_at(
                f"tool '{name}' has '{key}', and tool_execution is 'simulated': a model plays every tool",
                i,
                key,
                hint="remove it, or set tool_execution: sandbox to run the real tools",
            )
        return Tool(name, description.strip(), parameters, returns=returns)
    if (implementation is None) == (endpoint is None):
        raise error_at(
            f"tool '{name}' needs exactly one of 'implementation' (module:function) or 'endpoint' (an http URL)",
            i,
        )
    if implementation is not None and (
        not isinstance(implementation, str) or not TARGET.match(implementation)
    ):
        raise error_at(
            f"tool '{name}': implementation must look like 'module:function', got {implementation!r}",
            i,
            "implementation",
        )
    if endpoint is not None and (not isinstance(endpoint, str) or not re.match(r"^https?://\S+$", endpoint)):
        raise error_at(f"tool '{name}': endpoint must be an http(s) URL, got {endpoint!r}", i, "endpoint")
    return Tool(name, description.strip(), parameters, implementation, endpoint, returns)


def _check_schema(name: str, schema: Any, error_at: ErrorAt, *keys: Any) -> None:
    """``schema`` (at ``keys`` of the tools list) is a valid JSON schema mapping."""
    what = keys[-1]
    if not isinstance(schema, dict):
        raise error_at(f"tool '{name}': {what} must be a JSON schema mapping", *keys)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = [str(p) for p in exc.absolute_path]
        where = "/".join(path) or "(root)"
        raise error_at(
            f"tool '{name}': {what} is not a valid JSON schema: at {where}: {exc.message}",
            *keys,
            *path,
            hint=TYPE_HINT if path and path[-1] == "type" else SCHEMA_HINT,
        ) from None


def _check_parameters(name: str, parameters: Any, i: int, error_at: ErrorAt) -> None:
    _check_schema(name, parameters, error_at, i, "function", "parameters")
    if parameters.get("type") != "object":
        raise error_at(
            f"tool '{name}': parameters must describe an object (type: object), got type {parameters.get('type')!r}",
            i,
            "function",
            "parameters",
            hint="function arguments are passed by name: {type: object, properties: {...}}",
        )


def implementation_problem(target: str, search_path: list[Path]) -> str | None:
    """Why ``module:function`` cannot be called, or None. The module is looked up in
    ``search_path`` first, then where Python would find it, without running it."""
    module, function = target.split(":")
    origin = _find_module(module, search_path)
    if origin is None:
        return f"cannot be imported: no module '{module}' in {', '.join(map(str, search_path))} or installed"
    if origin.suffix != ".py":
        return None  # an extension or namespace package: nothing to read
    try:
        tree = ast.parse(origin.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        return f"cannot be imported: {origin.name} does not parse ({exc})"
    names = _top_level_names(tree)
    if function not in names and "__getattr__" not in names and "*" not in names:
        return f"cannot be called: {origin.name} defines no '{function}'"
    return None


def _find_module(module: str, search_path: list[Path]) -> Path | None:
    """The source file of ``module`` (dotted), searched in ``search_path`` then sys.path."""
    parts = module.split(".")
    paths = [str(p) for p in search_path]
    spec = None
    for depth, part in enumerate(parts):
        spec = importlib.machinery.PathFinder.find_spec(part, paths)
        if spec is None:
            break
        if depth < len(parts) - 1:
            paths = list(spec.submodule_search_locations or [])
    if spec is None:
        try:  # installed or standard-library modules (parent packages are imported)
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
    if spec is None:
        return None
    return Path(spec.origin) if spec.origin and spec.has_location else Path(module)


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def call_problem(call: dict[str, Any], tools: dict[str, Tool]) -> str | None:
    """Why ``{name, arguments}`` does not match the tools' schemas, or None."""
    name = call.get("name")
    tool = tools.get(name) if isinstance(name, str) else None
    if tool is None:
        return f"unknown tool {name!r} (tools: {', '.join(sorted(tools))})"
    arguments = call.get("arguments")
    if not isinstance(arguments, dict):
        return f"tool '{tool.name}': arguments must be an object, got {type(arguments).__name__}"
    problem = schema_problem(tool.parameters, arguments, "(arguments)")
    return f"tool '{tool.name}': {problem}" if problem else None


def schema_problem(schema: dict[str, Any], value: Any, root: str) -> str | None:
    """Where and why ``value`` breaks the JSON schema ``schema`` (the most relevant error;
    ``root`` names the whole value), or None."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or root
    return f"at {where}: {error.message}"
