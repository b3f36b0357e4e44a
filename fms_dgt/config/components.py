"""Build a registered component from its YAML spec.

A spec is a mapping with either ``type: <registry name>`` plus keyword arguments, or
``class_path: package.module:Class`` plus ``init_args: {...}``. The second form lets a
config swap a class without code changes. Keyword arguments are checked against the
constructor signature before calling it, so a misspelled key is reported with its line and
a did-you-mean instead of a TypeError from deep inside."""

from __future__ import annotations

import inspect
from typing import Any

from fms_dgt.config.yaml_loader import YamlDoc, expand_env
from fms_dgt.errors import ConfigError
from fms_dgt.registry import Registry, did_you_mean, import_object

Key = tuple[Any, ...]


def accepted_kwargs(cls: type) -> tuple[set[str], bool]:
    """Keyword names ``cls.__init__`` accepts along its MRO, and whether it (or a base it
    forwards to) takes ``**kwargs`` for real (a base that rejects unknowns doesn't count).

    A ``**kwargs`` is assumed to be forwarded to the next ``__init__`` in the MRO, so the
    chain is closed as soon as one ``__init__`` has none, and at ``object`` (which rejects
    every keyword). A class that consumes arbitrary keywords itself says so with
    ``__accepts_any_kwargs__ = True``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object:
            return names, False
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return names, True
        var_kw = False
        for p in params:
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self":
                names.add(p.name)
            elif p.kind == p.VAR_KEYWORD:
                var_kw = True
        if not var_kw:
            return names, False
        if getattr(klass, "__accepts_any_kwargs__", False):
            return names, True
    return names, True


def check_kwargs(
    cls: type,
    kwargs: dict[str, Any],
    *,
    doc: YamlDoc | None,
    key: Key,
    what: str,
    reserved: set[str] = frozenset(),
) -> None:
    names, open_ended = accepted_kwargs(cls)
    if open_ended:
        return
    names -= reserved
    for k in kwargs:
        if k not in names:
            hint = did_you_mean(str(k), names) or f"accepted: {', '.join(sorted(names)) or 'none'}"
            msg = f"{what} {cls.__name__} does not accept '{k}'"
            if doc is not None:
                raise doc.error(msg, *key, k, hint=hint)
            raise ConfigError(msg, field=".".join(map(str, (*key, k))), hint=hint)


def resolve_class(
    registry: Registry[Any], spec: dict[str, Any], *, doc: YamlDoc | None, key: Key
) -> tuple[type, dict[str, Any]]:
    """The class a spec names and the keyword arguments it gives (env vars expanded)."""
    spec = dict(spec)
    sub = "class_path" if "class_path" in spec else "type"
    try:
        if "class_path" in spec:
            path = spec.pop("class_path")
            init_args = spec.pop("init_args", None) or {}
            spec.pop("type", None)
            if not isinstance(init_args, dict):
                raise ConfigError("init_args must be a mapping")
            cls = import_object(str(path))
            kwargs = {**spec, **init_args}
        elif "type" in spec:
            cls = registry.get(str(spec.pop("type")))
            kwargs = spec
        else:
            raise ConfigError(
                f"a {registry.kind} needs 'type' or 'class_path'",
                hint=f"known types: {', '.join(registry) or 'none'}",
            )
    except ConfigError as err:
        line = doc.line_of(*key, sub) if doc else None
        raise err.located(
            file=doc.path if doc else None, line=line, field=".".join(map(str, (*key, sub)))
        ) from None
    return cls, expand_env(kwargs, doc=doc, key=key)


def build_component(
    registry: Registry[Any],
    spec: dict[str, Any],
    *,
    doc: YamlDoc | None = None,
    key: Key = (),
    runtime_args: tuple[Any, ...] = (),
    runtime_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Instantiate the component ``spec`` describes; every failure is a located ConfigError."""
    if not isinstance(spec, dict):
        msg = f"expected a mapping describing a {registry.kind}, got {type(spec).__name__}"
        raise doc.error(msg, *key) if doc else ConfigError(msg)
    cls, kwargs = resolve_class(registry, spec, doc=doc, key=key)
    runtime_kwargs = runtime_kwargs or {}
    check_kwargs(cls, kwargs, doc=doc, key=key, what=registry.kind, reserved=set(runtime_kwargs))
    try:
        return cls(*runtime_args, **kwargs, **runtime_kwargs)
    except ConfigError as err:
        raise err.located(file=doc.path if doc else None, line=doc.line_of(*key) if doc else None) from None
    except (TypeError, ValueError) as exc:
        msg = f"cannot build {registry.kind} {cls.__name__}: {exc}"
        raise doc.error(msg, *key) if doc else ConfigError(msg) from None
