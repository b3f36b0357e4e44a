"""Build a registered component from its YAML spec, with its arguments checked first.

A spec is a mapping with either ``type: <registry name>`` plus keyword arguments, or
``class_path: package.module:Class`` plus ``init_args: {...}``. The second form lets a
config swap a class without code changes.

The constructor's signature is the schema: its keyword names are the keys a spec may use
and its annotations their types. ``check_args`` turns them into a pydantic model, so a
misspelled key, a word where a number goes or a string where a list goes is reported with
its line, the expected type and a did-you-mean when the task loads, instead of as a
TypeError (or a wrong result) in the middle of a run.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from fms_dgt.config.env import expand_env
from fms_dgt.config.messages import errors_from
from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.errors import ConfigError, ConfigErrors
from fms_dgt.registry import Registry, did_you_mean, import_object

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Signature:
    """What a class's constructor chain accepts by keyword."""

    model: type[BaseModel]
    names: frozenset[str]
    required: frozenset[str]
    open_ended: bool  # takes arbitrary keywords for real (nothing to check names against)
    attrs: dict[str, str]  # parameter name -> field name in ``model``


@functools.cache
def signature_of(cls: type) -> Signature:
    """The keyword parameters of ``cls.__init__`` along its MRO, with their annotations.

    A ``**kwargs`` is assumed to be forwarded to the next ``__init__`` in the MRO, so the
    chain is closed as soon as one ``__init__`` has none, and at ``object`` (which rejects
    every keyword). A class that consumes arbitrary keywords itself says so with
    ``__accepts_any_kwargs__ = True``."""
    params: dict[str, tuple[Any, bool]] = {}
    open_ended = True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object:
            open_ended = False
            break
        try:
            sig = inspect.signature(init)
        except (TypeError, ValueError):
            break
        hints = _hints(init)
        var_kw = False
        for p in sig.parameters.values():
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self":
                params.setdefault(p.name, (hints.get(p.name, Any), p.default is p.empty))
            elif p.kind == p.VAR_KEYWORD:
                var_kw = True
        if not var_kw:
            open_ended = False
            break
        if getattr(klass, "__accepts_any_kwargs__", False):
            break
    # a parameter named like a pydantic attribute ("schema") gets another field name, its
    # own name as the alias (what the YAML says and what errors show)
    attrs = {name: f"arg_{name}" if hasattr(BaseModel, name) else name for name in params}
    fields: dict[str, Any] = {
        attrs[name]: (Annotated[_checkable(tp), Field(alias=name)], None) for name, (tp, _) in params.items()
    }
    base = _OpenArgs if open_ended else _Args
    try:
        model = create_model(f"{cls.__name__}Args", __base__=base, **fields)
    except Exception:  # an annotation pydantic cannot check: names only
        loose = {attrs[n]: (Annotated[Any, Field(alias=n)], None) for n in params}
        model = create_model(f"{cls.__name__}Args", __base__=base, **loose)  # type: ignore[call-overload]
    required = frozenset(n for n, (_, req) in params.items() if req)
    return Signature(model, frozenset(params), required, open_ended, attrs)


def _hints(func: Any) -> dict[str, Any]:
    """Resolved annotations of ``func``; one that cannot be resolved reads as ``Any``."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:
        pass
    out: dict[str, Any] = {}
    namespace = getattr(func, "__globals__", {})
    for name, ann in getattr(func, "__annotations__", {}).items():
        try:
            out[name] = eval(ann, namespace) if isinstance(ann, str) else ann  # noqa: S307 - annotations
        except Exception:
            out[name] = Any
    return out


def _checkable(tp: Any) -> Any:
    """``tp`` if pydantic can validate it, else ``Any``."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp  # a model brings its own config (TypeAdapter refuses one for it)
    try:
        from pydantic import TypeAdapter

        TypeAdapter(tp, config=ConfigDict(arbitrary_types_allowed=True))
        return tp
    except Exception:
        return Any


class _Args(BaseModel):
    """Base of the argument models built from signatures."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML ``true`` where a number goes is a mistake pydantic's lax mode would take as 1."""
        field = cls.model_fields.get(info.field_name or "")  # field names, not aliases
        if isinstance(value, bool) and field is not None and _numeric(field.annotation):
            raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


class _OpenArgs(_Args):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)


def _numeric(tp: Any) -> bool:
    args = typing.get_args(tp) or (tp,)
    # ``Annotated[float, Field(gt=0)]`` is a number too
    args = tuple(typing.get_args(a)[0] if typing.get_origin(a) is Annotated else a for a in args)
    return bool(args) and all(a in (int, float, type(None)) for a in args) and bool({int, float} & set(args))


def check_args(
    cls: type,
    kwargs: dict[str, Any],
    *,
    doc: YamlDoc | None,
    key: Key,
    what: str,
    reserved: frozenset[str] | set[str] = frozenset(),
    also: list[str] | None = None,
) -> dict[str, Any]:
    """``kwargs`` checked against ``cls``'s constructor (names, types, required keys), with
    values converted as the annotations say (``"0.5"`` for a float becomes 0.5). Every
    problem is reported at once. ``reserved`` names are supplied by the runtime, not YAML;
    ``also`` are other keys valid at the same place (for the did-you-mean of a typo)."""
    sig = signature_of(cls)
    problems: list[ConfigError] = []
    names = sig.names - reserved
    if not sig.open_ended:
        for k in kwargs:
            if k not in names:
                hint = did_you_mean(str(k), [*names, *(also or [])])
                hint = hint or f"accepted: {', '.join(sorted(names)) or 'none'}"
                problems.append(
                    _located(f"{what} {cls.__name__} does not accept '{k}'", doc, (*key, k), hint)
                )
    for name in sorted(sig.required - reserved - set(kwargs)):
        problems.append(_located(f"{what} {cls.__name__} needs '{name}'", doc, key, f"add '{name}: ...'"))
    known = {k: v for k, v in kwargs.items() if k in names or sig.open_ended}
    try:
        checked = sig.model.model_validate(known)
    except ValidationError as exc:
        err = errors_from(exc, sig.model, known, doc, key)
        problems.extend(err.errors if isinstance(err, ConfigErrors) else [err])
        checked = None
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
    assert checked is not None
    out = {k: getattr(checked, sig.attrs[k]) for k in known if k in sig.names}
    out.update({k: v for k, v in known.items() if k not in sig.names})  # open-ended extras as given
    return out


def _constructor_error(err: ConfigError, doc: YamlDoc, key: Key) -> ConfigError:
    """A constructor's error, located: at the line of the argument it names (``field``)
    when the spec sets that argument, else at the spec."""
    keys = (*key, err.field)
    named = err.file is None and err.field and not isinstance(err, ConfigErrors)
    if named and (keys in doc.origins or keys in doc.lines):
        where, line = doc.locate(*keys)
        field = ".".join(str(k) for k in keys)
        return ConfigError(err.message, file=where, line=line, field=field, hint=err.hint)
    return doc.sub_error(err, *key)


def _located(message: str, doc: YamlDoc | None, key: Key, hint: str | None) -> ConfigError:
    if doc is not None:
        return doc.error(message, *key, hint=hint)
    return ConfigError(message, field=".".join(map(str, key)) or None, hint=hint)


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
        if doc is None:
            raise err.located(field=".".join(map(str, (*key, sub)))) from None
        raise doc.sub_error(err, *key, sub) from None
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
    kwargs = check_args(cls, kwargs, doc=doc, key=key, what=registry.kind, reserved=set(runtime_kwargs))
    try:
        return cls(*runtime_args, **kwargs, **runtime_kwargs)
    except ConfigError as err:
        raise (_constructor_error(err, doc, key) if doc else err) from None
    except (TypeError, ValueError) as exc:
        msg = f"cannot build {registry.kind} {cls.__name__}: {exc}"
        raise doc.error(msg, *key) if doc else ConfigError(msg) from None
