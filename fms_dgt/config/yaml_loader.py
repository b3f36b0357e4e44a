"""YAML → Python with the line of every key kept, so any later validation error can point
at ``file:line``.

Safe by construction: only plain YAML types are built (no Python object tags); duplicate
keys, recursive aliases, non-UTF-8 bytes and oversized files are config errors. ``!include
other.yaml`` inlines another file (cycles are reported). ``${VAR}`` / ``${VAR:-default}``
are left as written here and expanded by ``fms_dgt.config.env.expand_env`` when the runtime
builds objects, so the raw text (not the secret) is what reaches the task card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fms_dgt.errors import ConfigError

MAX_YAML_BYTES = 5 * 1024 * 1024
Key = tuple[Any, ...]
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with our one extra tag, ``!include``, resolved by ``_Builder``.

    A subclass, so registering the tag never changes ``yaml.SafeLoader`` itself: any other
    ``yaml.safe_load`` in the process (a user's code, a library) behaves as PyYAML documents."""


@dataclass
class YamlDoc:
    """A loaded YAML file: its data and the 1-based line of each key path.

    After an override file is merged in (``overlay``), some key paths hold text written in
    that other file: ``origins`` maps them to (file, line) there, so an error about such a
    value names the file that set it, not the one it was merged into."""

    path: Path
    data: Any
    lines: dict[Key, int] = field(default_factory=dict)
    origins: dict[Key, tuple[Path, int | None]] = field(default_factory=dict)

    def locate(self, *keys: Any) -> tuple[Path, int | None]:
        """(file, line) of the deepest known prefix of ``keys`` (so a bad nested value still
        points near the right place)."""
        for end in range(len(keys), -1, -1):
            prefix = tuple(keys[:end])
            origin = self.origins.get(prefix)
            if origin is not None:
                return origin
            line = self.lines.get(prefix)
            if line is not None:
                return self.path, line
        return self.path, None

    def line_of(self, *keys: Any) -> int | None:
        """Line of ``keys`` in this file (None when an override file set the value)."""
        where, line = self.locate(*keys)
        return line if where == self.path else None

    def error(self, message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        where, line = self.locate(*keys)
        return ConfigError(
            message, file=where, line=line, field=".".join(str(k) for k in keys) or None, hint=hint
        )

    def sub_error(self, err: ConfigError, *keys: Any) -> ConfigError:
        """``err`` located at ``keys`` in this file where it has no location of its own."""
        where, line = self.locate(*keys)
        return err.located(file=where, line=line, field=".".join(str(k) for k in keys) or None)

    def overlay(self, data: Any, source: YamlDoc | None, source_key: Key = (), at: Key = ()) -> YamlDoc:
        """This document with ``data`` (found at ``source_key`` in ``source``) merged in at
        ``at`` (see ``merge``); the merged-in values keep their own file and lines."""
        origins = dict(self.origins)
        base = _get(self.data, at)
        merged_at = merge(base, data, at, source_key, source, origins)
        return YamlDoc(self.path, _set(self.data, at, merged_at), self.lines, origins)


# named lists (blocks of a builder, a task's filters): overrides merge into them by name
NAMED_LISTS = frozenset({"blocks", "postprocessors", "filters"})


def merge(
    base: Any,
    over: Any,
    at: Key = (),
    source_key: Key = (),
    source: YamlDoc | None = None,
    origins: dict[Key, tuple[Path, int | None]] | None = None,
) -> Any:
    """Deep-merge ``over`` into a copy of ``base``: mappings merge key by key; lists of
    named blocks (``blocks``, ``postprocessors``, ``filters``) merge by ``name`` (see
    ``_merge_named``); any other value replaces. Where ``source`` is given, every merged-in
    path is recorded in ``origins`` with its file and line."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            sub, src = (*at, k), (*source_key, k)
            if k in out and isinstance(v, dict) and isinstance(out[k], dict):
                out[k] = merge(out[k], v, sub, src, source, origins)
            elif k in NAMED_LISTS and _named(v) and _named(out.get(k)) and v:
                out[k] = _merge_named(out[k], v, sub, src, source, origins)
            else:
                out[k] = v
                _mark(v, sub, src, source, origins)
        return out
    _mark(over, at, source_key, source, origins)
    return over


def _named(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, dict) and "name" in x for x in value)


def _merge_named(
    base: list[dict[str, Any]],
    over: list[dict[str, Any]],
    at: Key,
    source_key: Key,
    source: YamlDoc | None,
    origins: dict[Key, tuple[Path, int | None]] | None,
) -> list[dict[str, Any]]:
    """An entry whose ``name`` is already there is merged into it (a different ``type`` or
    ``class_path`` replaces it whole; ``remove: true`` drops it); a new name is appended.
    (An empty override list is not merged: it replaces, so ``postprocessors: []`` clears.)"""
    out = [dict(x) for x in base]
    index = {x["name"]: i for i, x in enumerate(out)}
    for j, entry in enumerate(over):
        i = index.get(entry["name"])
        src = (*source_key, j)
        if entry.get("remove") is True:
            if i is not None:
                out[i] = {}
            continue
        kind_changed = i is not None and any(
            k in entry and entry[k] != out[i].get(k) for k in ("type", "class_path")
        )
        if i is None or kind_changed:
            i = index[entry["name"]] = i if i is not None else len(out)
            if i == len(out):
                out.append(entry)
            else:
                out[i] = entry
            _mark(entry, (*at, i), src, source, origins)
        else:
            out[i] = merge(out[i], entry, (*at, i), src, source, origins)
    kept = [x for x in out if x]
    if len(kept) != len(out) and origins is not None:  # removals shift later entries
        _shift(origins, at, [i for i, x in enumerate(out) if x])
    return kept


def _shift(origins: dict[Key, tuple[Path, int | None]], at: Key, survivors: list[int]) -> None:
    new_index = {old: new for new, old in enumerate(survivors)}
    n = len(at)
    for key in [k for k in origins if k[:n] == at and len(k) > n]:
        value = origins.pop(key)
        if key[n] in new_index:
            origins[(*at, new_index[key[n]], *key[n + 1 :])] = value


def _mark(
    value: Any,
    at: Key,
    source_key: Key,
    source: YamlDoc | None,
    origins: dict[Key, tuple[Path, int | None]] | None,
) -> None:
    if source is None or origins is None:
        return
    origins[at] = source.locate(*source_key)
    if isinstance(value, dict):
        for k, v in value.items():
            _mark(v, (*at, k), (*source_key, k), source, origins)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _mark(v, (*at, i), (*source_key, i), source, origins)


def _get(data: Any, at: Key) -> Any:
    for k in at:
        data = data.get(k) if isinstance(data, dict) else None
    return data


def _set(data: Any, at: Key, value: Any) -> Any:
    if not at:
        return value
    out = dict(data) if isinstance(data, dict) else {}
    out[at[0]] = _set(out.get(at[0]), at[1:], value)
    return out


class _Builder:
    def __init__(self, path: Path, stack: tuple[Path, ...]) -> None:
        self.path = path
        self.stack = stack
        self.lines: dict[Key, int] = {}
        self._active: set[int] = set()
        self._constructor = _Loader("")

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
        node = yaml.compose(text, Loader=_Loader)
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
