"""One generic registry for every pluggable kind (builders, blocks, engines, datastores,
formatters).

Entries are either classes or lazy ``"module:Class"`` strings, so heavy components (vLLM,
torch, openai) are imported only when a task selects them. Unknown names raise a
``RegistryError`` with a did-you-mean; registering a name twice is an error unless it is the
very same object (module reloads)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fms_dgt.errors import MissingDependencyError, RegistryError

if TYPE_CHECKING:  # the kinds of things registered (imported for types only: no cycles)
    from fms_dgt.blocks.base import Block
    from fms_dgt.builders.base import DataBuilder
    from fms_dgt.datastores.base import Datastore
    from fms_dgt.engines.base import Engine
    from fms_dgt.formatters.base import Formatter

T = TypeVar("T")


def did_you_mean(name: str, options: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """A ``did you mean 'x'?`` hint for ``name`` among ``options``, or None."""
    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def import_object(path: str) -> Any:
    """Import ``"package.module:Attr"`` (or ``package.module.Attr``)."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise RegistryError(f"'{path}' is not an importable path", hint="use 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = (exc.name or module_name).split(".")[0]
        if module_name.split(".")[0] == top:
            raise RegistryError(f"cannot import module '{module_name}' for '{path}'") from exc
        raise MissingDependencyError(
            f"'{path}' needs the package '{top}', which is not installed",
            hint=f"pip install {top}",
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise RegistryError(
            f"module '{module_name}' has no attribute '{attr}'", hint=did_you_mean(attr, names)
        ) from None


class Registry(Generic[T]):
    """Name → component map for one kind of thing (``kind`` appears in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator: ``@registry.register("name")`` on a class."""

        def deco(obj: T) -> T:
            self.add(name, obj, *aliases)
            return obj

        return deco

    def add(self, name: str, obj: T | str, *aliases: str) -> None:
        """Register ``obj`` (a class or a lazy ``"module:Class"`` string) under ``name``."""
        for key in (name, *aliases):
            if key in self._aliases:
                if self._aliases[key] == name:
                    continue
                existing: Any = self._aliases[key]
            else:
                existing = self._entries.get(key)
            if existing is not None and not self._same(existing, obj):
                raise RegistryError(
                    f"{self.kind} '{key}' is registered twice ({_describe(existing)} and {_describe(obj)})",
                    hint="rename one of them",
                )
        self._entries[name] = obj
        for alias in aliases:
            self._aliases[alias] = name

    def _same(self, existing: Any, new: Any) -> bool:
        if existing is new or existing == new:
            return True
        # a lazy string being replaced by the class it names (import-time registration)
        if isinstance(existing, str) and not isinstance(new, str):
            return existing == f"{new.__module__}:{new.__qualname__}"
        if isinstance(existing, str) and isinstance(new, str):
            return False
        # the same class re-defined by a module reload
        return getattr(existing, "__qualname__", None) == getattr(new, "__qualname__", 1) and getattr(
            existing, "__module__", None
        ) == getattr(new, "__module__", 1)

    def get(self, name: str) -> T:
        """The component registered as ``name``, importing it if it was registered lazily."""
        key = self._aliases.get(name, name)
        if key not in self._entries:
            raise RegistryError(
                f"unknown {self.kind} '{name}'",
                hint=did_you_mean(name, self.names()) or f"known: {', '.join(self.names()) or 'none'}",
            )
        entry = self._entries[key]
        if isinstance(entry, str):
            obj = import_object(entry)
            self._entries[key] = obj
            return obj
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries) + sorted(self._aliases)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def describe(self, name: str) -> str:
        """Where an entry lives, without importing it."""
        return _describe(self._entries[self._aliases.get(name, name)])


def _describe(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


data_builders: Registry[type[DataBuilder]] = Registry("data builder")
blocks: Registry[type[Block]] = Registry("block")
engines: Registry[type[Engine]] = Registry("engine")
datastores: Registry[type[Datastore]] = Registry("datastore")
formatters: Registry[type[Formatter]] = Registry("formatter")

ALL: dict[str, Registry[Any]] = {
    "data_builders": data_builders,
    "blocks": blocks,
    "engines": engines,
    "datastores": datastores,
    "formatters": formatters,
}

BuilderT = TypeVar("BuilderT", bound="type[DataBuilder]")
BlockT = TypeVar("BlockT", bound="type[Block]")
EngineT = TypeVar("EngineT", bound="type[Engine]")
DatastoreT = TypeVar("DatastoreT", bound="type[Datastore]")
FormatterT = TypeVar("FormatterT", bound="type[Formatter]")


def register_data_builder(name: str, *aliases: str) -> Callable[[BuilderT], BuilderT]:
    return data_builders.register(name, *aliases)  # type: ignore[return-value]


def register_block(name: str, *aliases: str) -> Callable[[BlockT], BlockT]:
    return blocks.register(name, *aliases)  # type: ignore[return-value]


def register_engine(name: str, *aliases: str) -> Callable[[EngineT], EngineT]:
    return engines.register(name, *aliases)  # type: ignore[return-value]


def register_datastore(name: str, *aliases: str) -> Callable[[DatastoreT], DatastoreT]:
    return datastores.register(name, *aliases)  # type: ignore[return-value]


def register_formatter(name: str, *aliases: str) -> Callable[[FormatterT], FormatterT]:
    return formatters.register(name, *aliases)  # type: ignore[return-value]
