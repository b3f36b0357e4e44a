"""YAML → Python with the line of every key kept, so any later validation error can point
at ``file:line``.

Safe by construction: only plain YAML types are built (no Python object tags); duplicate
keys, recursive aliases, non-UTF-8 bytes and oversized files are config errors. ``!include
other.yaml`` inlines another file (cycles are reported). ``${VAR}`` / ``${VAR:-default}``
are left as written here and expanded by ``expand_env`` when the runtime builds objects, so
the raw text (not the secret) is what reaches the task card.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fms_dgt.errors import ConfigError

MAX_YAML_BYTES = 5 * 1024 * 1024
Key = tuple[Any, ...]
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# values taken from the environment; redacted from logs and outputs
SECRET_VALUES: set[str] = set()


@dataclass
class YamlDoc:
    """A loaded YAML file: its data and the 1-based line of each key path."""

    path: Path
    data: Any
    lines: dict[Key, int] = field(default_factory=dict)

    def line_of(self, *keys: Any) -> int | None:
        """Line of the deepest known prefix of ``keys`` (so a bad nested value still points
        near the right place)."""
        for end in range(len(keys), -1, -1):
            line = self.lines.get(tuple(keys[:end]))
            if line is not None:
                return line
        return None

    def error(self, message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        return ConfigError(
            message,
            file=self.path,
            line=self.line_of(*keys),
            field=".".join(str(k) for k in keys) or None,
            hint=hint,
        )


class _Builder:
    def __init__(self, path: Path, stack: tuple[Path, ...]) -> None:
        self.path = path
        self.stack = stack
        self.lines: dict[Key, int] = {}
        self._active: set[int] = set()
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, key: Key) -> Any:
        self.lines.setdefault(key, node.start_mark.line + 1)
        if id(node) in self._active:
            raise ConfigError(
                "recursive YAML alias",
                file=self.path,
                line=node.start_mark.line + 1,
                field=_dotted(key) or None,
                hint="an anchor may not contain itself",
            )
        if node.tag == "!include":
            return self._include(node, key)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTION_TAGS:
            raise ConfigError(
                f"unsupported YAML tag {node.tag!r}",
                file=self.path,
                line=node.start_mark.line + 1,
                field=_dotted(key) or None,
                hint="only plain YAML values are allowed (no Python object tags)",
            )
        if isinstance(node, yaml.MappingNode):
            self._active.add(id(node))
            try:
                return self._mapping(node, key)
            finally:
                self._active.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self._active.add(id(node))
            try:
                return [self.build(item, (*key, i)) for i, item in enumerate(node.value)]
            finally:
                self._active.discard(id(node))
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise ConfigError(
                f"unsupported YAML tag {node.tag!r}",
                file=self.path,
                line=node.start_mark.line + 1,
                field=_dotted(key) or None,
                hint="only plain YAML values are allowed (no Python object tags)",
            ) from None

    def _mapping(self, node: yaml.MappingNode, key: Key) -> dict[Any, Any]:
        self._constructor.flatten_mapping(node)  # resolves '<<' merge keys
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    "mapping keys must be plain scalars",
                    file=self.path,
                    line=key_node.start_mark.line + 1,
                    field=_dotted(key) or None,
                )
            k = self._constructor.construct_object(key_node)
            if k in out:
                raise ConfigError(
                    f"duplicate key '{k}'",
                    file=self.path,
                    line=key_node.start_mark.line + 1,
                    field=_dotted((*key, k)),
                    hint="each key may appear once in a mapping",
                )
            self.lines[(*key, k)] = key_node.start_mark.line + 1
            out[k] = self.build(value_node, (*key, k))
        return out

    def _include(self, node: yaml.Node, key: Key) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise ConfigError("!include takes a file path", file=self.path, line=node.start_mark.line + 1)
        target = (self.path.parent / str(node.value)).resolve()
        if target in self.stack:
            chain = " -> ".join(p.name for p in (*self.stack, target))
            raise ConfigError(
                f"recursive !include ({chain})",
                file=self.path,
                line=node.start_mark.line + 1,
                field=_dotted(key) or None,
                hint="remove the include that points back",
            )
        return load_yaml(target, _stack=self.stack).data


def _dotted(key: Key) -> str:
    return ".".join(str(k) for k in key)


def _include_constructor(loader: yaml.SafeLoader, node: yaml.Node) -> Any:  # pragma: no cover
    return node


def load_yaml(path: str | Path, *, _stack: tuple[Path, ...] = ()) -> YamlDoc:
    """Load one YAML file safely, keeping key lines. Raises ConfigError on any problem."""
    path = Path(path)
    resolved = path.resolve()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ConfigError("file not found", file=path) from None
    if size > MAX_YAML_BYTES:
        raise ConfigError(
            f"file is {size / 1e6:.1f} MB; config files are limited to {MAX_YAML_BYTES / 1e6:.0f} MB",
            file=path,
            hint="put large seed data in a seed_datastore file instead of the YAML",
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            file=path,
            line=line,
            hint="save the file as UTF-8",
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {problem}", file=path, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=path) from None
    if node is None:
        return YamlDoc(path, None, {})
    builder = _Builder(path, (*_stack, resolved))
    try:
        data = builder.build(node, ())
    except RecursionError:
        raise ConfigError("YAML nesting is too deep", file=path) from None
    return YamlDoc(path, data, builder.lines)


def expand_env(value: Any, *, doc: YamlDoc | None = None, key: Key = ()) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in strings (recursively). A variable that is
    unset and has no default is a config error naming the field. Expanded values are
    remembered so logs and the task card can redact them."""
    if isinstance(value, str):
        if "${" not in value:
            return value

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                SECRET_VALUES.add(os.environ[name]) if os.environ[name] else None
                return os.environ[name]
            if default is not None:
                return default
            msg = f"environment variable ${{{name}}} is not set"
            if doc is not None:
                raise doc.error(msg, *key, hint=f"export {name}=... or write ${{{name}:-default}}")
            raise ConfigError(msg, field=_dotted(key) or None, hint=f"export {name}=...")

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, doc=doc, key=(*key, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, doc=doc, key=(*key, i)) for i, v in enumerate(value)]
    return value


def redact(text: str) -> str:
    """Remove every environment-provided value from ``text``."""
    for secret in SECRET_VALUES:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


yaml.add_constructor("!include", _include_constructor, Loader=yaml.SafeLoader)
