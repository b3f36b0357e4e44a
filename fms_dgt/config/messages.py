"""Turning pydantic validation errors into messages a user can act on.

One ``ValidationError`` can hold many problems; each becomes a ConfigError located at its
key in the YAML file (``file:line: field 'a.b': ...``), and all of them are raised together.
Unknown keys get a did-you-mean against the keys that model accepts at that place; a
required key that is missing next to an unknown key that looks like it (``data_pth`` for
``data_path``) is reported once, at the misspelled key, instead of as two puzzles.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import typing_extensions
from pydantic import BaseModel, ValidationError

from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.errors import ConfigError, ConfigErrors
from fms_dgt.registry import did_you_mean

M = TypeVar("M", bound=BaseModel)
Key = tuple[Any, ...]


def validated(model: type[M], data: Any, doc: YamlDoc | None, *key: Any, what: str = "a mapping") -> M:
    """``data`` (found at ``key`` in ``doc``) as a ``model``; every problem in it raised
    together as located ConfigErrors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _error(doc, key, f"expected {what}, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors_from(exc, model, data, doc, key) from None


def errors_from(exc: ValidationError, root: Any, data: Any, doc: YamlDoc | None, key: Key) -> ConfigError:
    """All problems of ``exc`` (raised validating ``data`` against type ``root``)."""
    problems = [(_clean(err["loc"]), err) for err in exc.errors()]
    for _, err in problems:  # a dataclass reports these under its own names
        err["type"] = {"unexpected_keyword_argument": "extra_forbidden", "missing_argument": "missing"}.get(
            err["type"], err["type"]
        )
    unknown = {loc for loc, err in problems if err["type"] == "extra_forbidden"}
    out: list[ConfigError] = []
    explained: set[Key] = set()
    for loc, err in problems:
        if err["type"] != "missing":
            continue
        parent, name = loc[:-1], str(loc[-1])
        siblings = _at(data, parent)
        accepted = set(options_at(root, parent))
        strays = [k for k in (siblings or {}) if isinstance(k, str) and k not in accepted]
        close = difflib.get_close_matches(name, strays, n=1, cutoff=0.6)
        if close:
            stray = (*parent, close[0])
            explained.add(stray)
            if stray in unknown:
                msg, hint = f"unknown key '{close[0]}'", f"did you mean '{name}'? ('{name}' is required)"
            else:
                msg, hint = f"missing required key '{name}'", f"rename '{close[0]}' to '{name}'"
            out.append(_error(doc, (*key, *stray), msg, hint))
        else:
            out.append(_error(doc, (*key, *parent), f"missing required key '{name}'", f"add '{name}: ...'"))
    for loc, err in problems:
        kind = err["type"]
        if kind == "missing" or loc in explained:
            continue
        if kind == "extra_forbidden":
            options = options_at(root, loc[:-1])
            name = str(loc[-1])
            close_key = did_you_mean(name, options)
            accepted_keys = f"accepted: {', '.join(options)}" if options else None
            out.append(_error(doc, (*key, *loc), f"unknown key '{name}'", close_key or accepted_keys))
        elif kind == "value_error":  # our own validators say what they got
            out.append(_error(doc, (*key, *loc), str(err["ctx"]["error"])))
        elif kind == "union_tag_invalid":  # a `type:` naming no known kind
            ctx = err["ctx"]
            field = str(ctx["discriminator"]).strip("'")
            tags = [t.strip().strip("'") for t in str(ctx["expected_tags"]).split(",")]
            close_tag = did_you_mean(str(ctx["tag"]), tags) or f"known: {', '.join(tags)}"
            out.append(_error(doc, (*key, *loc, field), f"unknown {field} '{ctx['tag']}'", close_tag))
        elif kind == "data_shape":
            out.append(_error(doc, (*key, *loc), err["msg"]))
        else:
            expected = describe_type(type_at(root, loc))
            given = err.get("input")
            if expected and kind.endswith(("_type", "_parsing")):  # "input should be a valid list"
                detail = f"expected {expected}"
            else:
                detail = f"{err['msg'][0].lower()}{err['msg'][1:]}"
            out.append(_error(doc, (*key, *loc), f"{detail} (got {given!r})"))
    return out[0] if len(out) == 1 else ConfigErrors(out)


def _error(doc: YamlDoc | None, key: Key, message: str, hint: str | None = None) -> ConfigError:
    if doc is not None:
        return doc.error(message, *key, hint=hint)
    return ConfigError(message, field=".".join(map(str, key)) or None, hint=hint)


def _clean(loc: tuple[Any, ...]) -> Key:
    """A pydantic location without the union tags and validator names it inserts."""
    from fms_dgt.config.schema import UNION_TAGS

    return tuple(
        p
        for p in loc
        if not (isinstance(p, str) and (p in UNION_TAGS or "[" in p or p in ("str", "list", "dict")))
    )


def _at(data: Any, loc: Key) -> Any:
    for part in loc:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


# ---- what a type accepts at a location --------------------------------------------------
def _unwrap(tp: Any) -> list[Any]:
    """The alternatives of ``tp`` without ``None``, ``Annotated`` and ``Optional`` wrappers."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin is Union or (origin is not None and type(tp).__name__ == "UnionType"):
        out: list[Any] = []
        for arg in get_args(tp):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [tp]


def _fields(tp: Any) -> dict[str, Any] | None:
    """Field name -> annotation of a model, TypedDict or dataclass type (None otherwise)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {(f.alias or n): f.annotation for n, f in tp.model_fields.items()}
    if isinstance(tp, type) and typing_extensions.is_typeddict(tp):
        return typing.get_type_hints(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        try:
            return typing.get_type_hints(tp)
        except Exception:
            return {f.name: Any for f in dataclasses.fields(tp)}
    return None


def type_at(root: Any, loc: Key) -> Any:
    """The declared type at ``loc`` inside ``root`` (None where it cannot be told)."""
    current: list[Any] = [root]
    for part in loc:
        nxt: list[Any] = []
        for tp in current:
            for alt in _unwrap(tp):
                origin = get_origin(alt)
                if isinstance(part, int) and origin in (list, tuple):
                    nxt.append(get_args(alt)[0] if get_args(alt) else Any)
                elif origin is dict:
                    args = get_args(alt)
                    nxt.append(args[1] if len(args) == 2 else Any)
                else:
                    fields = _fields(alt)
                    if fields is not None and part in fields:
                        nxt.append(fields[part])
        if not nxt:
            return None
        current = nxt
    return current[0] if len(current) == 1 else Union[tuple(current)]  # noqa: UP007


def options_at(root: Any, loc: Key) -> list[str]:
    """The keys accepted at ``loc`` (a model's, TypedDict's or dataclass's fields)."""
    tp = type_at(root, loc) if loc else root
    for alt in _unwrap(tp) if tp is not None else []:
        fields = _fields(alt)
        if fields is not None:
            return list(fields)
    return []


def describe_type(tp: Any) -> str:
    """A short reading of a type annotation for messages (``a number``, ``a list of strings``)."""
    if tp is None or tp is Any:
        return ""
    alts = _unwrap(tp)
    if len(alts) > 1:
        return " or ".join(d for d in (describe_type(a) for a in alts) if d)
    tp = alts[0]
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple):
        inner = describe_type(get_args(tp)[0]) if get_args(tp) else ""
        return f"a list of {_plural(inner)}" if inner else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if tp in names:
        return names[tp]
    if _fields(tp) is not None:
        return "a mapping"
    return getattr(tp, "__name__", "")


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            word = text[len(article) :]
            return word if word.endswith("s") else word + "s"
    return text
