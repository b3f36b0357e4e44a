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
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            raise ConfigError(
                "!include takes a file path",
                file=self.path,
                line=node.start_mark.line + 1,
                field=_dotted(key) or None,
            )
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
        try:
            return load_yaml(target, _stack=self.stack).data
        except ConfigError as err:
            if err.file != str(target) or err.line is not None:
                raise  # a problem inside the included file: it has its own location
            # the included file itself is unusable: point at the !include that names it
            raise ConfigError(
                f"!include {node.value}: {err.message}",
                file=self.path,
                line=node.start_mark.line + 1,
                field=_dotted(key) or None,
                hint=err.hint or f"looked for {target}",
            ) from None


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
        if path.is_dir():
            raise ConfigError("is a folder, not a YAML file", file=path)
    except FileNotFoundError:
        raise ConfigError("file not found", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    if size > MAX_YAML_BYTES:
        with open(path, "rb") as fh:
            over_at = fh.read(MAX_YAML_BYTES).count(b"\n") + 1
        raise ConfigError(
            f"file is {size / 1e6:.1f} MB; config files are limited to {MAX_YAML_BYTES / 1e6:.0f} MB "
            "(the limit is reached on this line)",
            file=path,
            line=over_at,
            hint="put large seed data in a seed_datastore file instead of the YAML",
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
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
        raise _syntax_error(exc, path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=path) from None
    if node is None:
        return YamlDoc(path, None, {})
    builder = _Builder(path, (*_stack, resolved))
    try:
        data = builder.build(node, ())
    except RecursionError:
        raise ConfigError("YAML nesting is too deep", file=path) from None
    except yaml.MarkedYAMLError as exc:  # e.g. a '<<' merge key given a scalar
        raise _syntax_error(exc, path) from None
    return YamlDoc(path, data, builder.lines)


def _syntax_error(exc: yaml.MarkedYAMLError, path: Path) -> ConfigError:
    """One located message for a PyYAML error. When the problem is that the file ended
    before something was closed (a quote, a bracket), the line that needs fixing is where
    that thing started, not the end of the file: point there and say where it ran out."""
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    context = exc.context_mark
    if context is not None and exc.context and mark is not None and context.line != mark.line:
        unterminated = "end of stream" in problem or "stream end" in problem
        if unterminated:
            return ConfigError(
                f"YAML syntax error: {problem} {exc.context} started here (the file ends on line {line})",
                file=path,
                line=context.line + 1,
                hint="close the quote or bracket opened on this line",
            )
        problem = f"{problem} ({exc.context} on line {context.line + 1})"
    hint = "indent with spaces; YAML does not allow tabs there" if "'\\t'" in problem else None
    return ConfigError(f"YAML syntax error: {problem}", file=path, line=line, hint=hint)


def expand_env(value: Any, *, doc: YamlDoc | None = None, key: Key = ()) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in strings (recursively). A variable that is
    unset and has no default is a config error naming the field. Expanded values are
    remembered so logs and the task card can redact them."""
    if isinstance(value, str):
        return _expand_string(value, doc, key) if "${" in value else value
    if isinstance(value, dict):
        return {k: expand_env(v, doc=doc, key=(*key, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, doc=doc, key=(*key, i)) for i, v in enumerate(value)]
    return value


def _expand_string(value: str, doc: YamlDoc | None, key: Key) -> str:
    """Expand every ``${...}`` in ``value``; ``$${`` stands for a literal ``${``. Anything
    else that starts with ``${`` is malformed and an error: left as it is, a typo such as
    ``${API KEY}`` would silently send the literal text as a credential."""

    def fail(msg: str, hint: str) -> ConfigError:
        if doc is not None:
            return doc.error(msg, *key, hint=hint)
        return ConfigError(msg, field=_dotted(key) or None, hint=hint)

    out: list[str] = []
    pos = 0
    while True:
        start = value.find("${", pos)
        if start < 0:
            out.append(value[pos:])
            return "".join(out)
        if start > pos and value[start - 1] == "$":  # "$${": an escaped literal
            out.append(value[pos : start - 1] + "${")
            pos = start + 2
            continue
        out.append(value[pos:start])
        match = _ENV.match(value, start)
        if match is None:
            end = value.find("}", start)
            shown = value[start : end + 1] if 0 <= end - start < 60 else value[start : start + 20]
            raise fail(
                f"malformed environment reference '{shown}'",
                "write ${NAME} or ${NAME:-default} (NAME: letters, digits, '_'), or $${ for a literal ${",
            )
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            if os.environ[name]:
                SECRET_VALUES.add(os.environ[name])
            out.append(os.environ[name])
        elif default is not None:
            out.append(default)
        else:
            raise fail(
                f"environment variable ${{{name}}} is not set",
                f"export {name}=... or write ${{{name}:-default}}",
            )
        pos = match.end()


def redact(text: str) -> str:
    """Remove every environment-provided value from ``text``."""
    for secret in SECRET_VALUES:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def redact_all(value: Any) -> Any:
    """``value`` with ``redact`` applied to every string in it (dicts and lists walked).
    For what the framework itself writes about a run (errors, reasons, requests), never
    for generated records, whose text is the user's data."""
    if not SECRET_VALUES:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_all(k): redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_all(v) for v in value]
    return value


yaml.add_constructor("!include", _include_constructor, Loader=yaml.SafeLoader)
