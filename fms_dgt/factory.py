"""From checked configs to live objects: a Task and its builder with blocks, filters,
postprocessors and formatter.

The configs come checked from ``fms_dgt.config`` (shapes, names and types); what is left
here needs the objects themselves: an engine block named by a judge must exist, a filter or
formatter must read fields the task's records have. Everything here runs before any model
is called, so every config error surfaces at load time (``--validate`` stops after this),
and every problem of a task is reported at once.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from fms_dgt.blocks.base import FilterBlock, FilterPostprocessor, Postprocessor
from fms_dgt.builders.base import DataBuilder
from fms_dgt.config.builder_file import BuilderConfig, check_block_spec
from fms_dgt.config.compat import unsupported_block
from fms_dgt.config.components import build_component, resolve_class
from fms_dgt.config.overrides import Overrides
from fms_dgt.config.task_file import TaskConfig
from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.engines.base import Engine
from fms_dgt.engines.view import EngineView
from fms_dgt.errors import ConfigError, Problems
from fms_dgt.formatters.base import Formatter
from fms_dgt.registry import blocks as block_registry
from fms_dgt.registry import did_you_mean, engines, formatters
from fms_dgt.task import GenerationTask, Task, TransformationTask


class EnginePool:
    """One engine instance per distinct configuration, shared by every task that uses it (so
    an in-process model is loaded once and all tasks share its concurrency limit)."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        # where each engine was configured, for errors found later (--validate's reachability)
        self.sources: dict[int, tuple[YamlDoc | None, tuple[Any, ...]]] = {}

    def get(self, spec: dict[str, Any], doc: YamlDoc | None, key: tuple[Any, ...]) -> Engine:
        cls, kwargs = resolve_class(engines, spec, doc=doc, key=key)
        ident = json.dumps(
            [f"{cls.__module__}:{cls.__qualname__}", {k: v for k, v in kwargs.items() if k != "name"}],
            sort_keys=True,
            default=str,
        )
        if ident not in self._engines:
            self._engines[ident] = build_component(engines, spec, doc=doc, key=key)
            self.sources[id(self._engines[ident])] = (doc, key)
        return self._engines[ident]

    async def reachability_problems(self) -> list[ConfigError]:
        """Engines whose server cannot be reached, each located where it was configured."""
        engines_ = self.all()
        found = await asyncio.gather(*(e.reachability_problem() for e in engines_))
        out = []
        for engine, problem in zip(engines_, found):
            if problem is None:
                continue
            doc, key = self.sources.get(id(engine), (None, ()))
            if doc is not None:
                out.append(doc.error(problem, *key, "base_url"))
            else:
                out.append(ConfigError(problem, field="--base-url"))
        return out

    def all(self) -> list[Engine]:
        return list(self._engines.values())


@dataclass
class PreparedTask:
    task: Task
    builder: DataBuilder
    filters: list[FilterBlock]
    postprocessors: list[Postprocessor]
    formatter: Formatter | None
    task_config: TaskConfig | None  # None: built from Python (fms_dgt.load), not a task.yaml
    builder_config: BuilderConfig


def build_task(config: TaskConfig, output_dir: str) -> Task:
    """The Task, with its seeds or input rows read and checked (no model is called)."""
    doc = config.doc
    try:
        task: Task = config.task_cls(**config.kwargs, output_dir=output_dir, yaml_doc=doc)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise doc.error(f"cannot build {config.task_cls.__name__}: {exc}") from None
    try:  # opens no file; a datastore's own checks of its options run now, not mid-run
        task.stores.data  # noqa: B018
    except (TypeError, ValueError) as exc:
        raise doc.error(f"bad datastore configuration: {exc}", "datastore") from None
    if isinstance(task, GenerationTask):
        task.load_seed_examples()
    elif isinstance(task, TransformationTask):
        for _ in task.iter_input():  # check every input row before any model call
            pass
    return task


def build_builder(
    task: Task,
    task_config: TaskConfig | None,
    config: BuilderConfig,
    builder_cls: type[DataBuilder],
    overrides: Overrides,
    pool: EnginePool,
) -> PreparedTask:
    """The builder with its blocks, the task's filters, postprocessors and formatter."""
    doc = config.doc
    problems = Problems()
    built: dict[str, Any] = {}
    filters: list[FilterBlock] = []
    for i, spec in enumerate(config.file.blocks):
        key = ("blocks", i)
        with problems.check():
            name = spec["name"]
            if _is_engine_spec(spec, doc, key):
                built[name] = (
                    _override_engine(name, spec, overrides, pool, doc, key) if overrides.engine else None
                )
                built[name] = built[name] or pool.get(spec, doc, key)
            else:
                built[name] = _build_block(spec, doc, key, pool, built)
                if isinstance(built[name], FilterBlock):
                    _check_fields(built[name], task, doc, key)
                    filters.append(built[name])
    task_doc = task.yaml_doc or doc
    seen: set[str] = set()
    for i, spec in enumerate(task.filter_configs):
        with problems.check():
            check_block_spec(spec, task_doc, ("filters", i), seen)
            block = _build_block(spec, task_doc, ("filters", i), pool, built)
            if not isinstance(block, FilterBlock):
                raise task_doc.error(f"'{block.name}' is not a filter block", "filters", i)
            _check_fields(block, task, task_doc, ("filters", i))
            filters.append(block)
    postprocessors: list[Postprocessor] = []
    for i, spec in enumerate(config.file.postprocessors):
        with problems.check():
            postprocessors.append(_postprocessor(spec, task, doc, ("postprocessors", i), pool, built))
    formatter = None
    with problems.check():
        formatter = _formatter(task, task_doc)
    problems.raise_if_any()
    builder = builder_cls(task, built, config.file.metadata)
    return PreparedTask(task, builder, filters, postprocessors, formatter, task_config, config)


def _postprocessor(
    spec: dict[str, Any],
    task: Task,
    doc: YamlDoc,
    key: tuple[Any, ...],
    pool: EnginePool,
    built: dict[str, Any],
) -> Postprocessor:
    block = _build_block(spec, doc, key, pool, built)
    if isinstance(block, FilterBlock):
        _check_fields(block, task, doc, key)
        return FilterPostprocessor(block)
    if not isinstance(block, Postprocessor):
        raise doc.error(
            f"'{spec.get('type', spec.get('class_path'))}' cannot be a postprocessor",
            *key,
            hint="use a filter or Postprocessor block",
        )
    return block


def _formatter(task: Task, doc: YamlDoc) -> Formatter | None:
    if task.formatter_config:
        formatter: Formatter = build_component(formatters, task.formatter_config, doc=doc, key=("formatter",))
        for part, names in formatter.fields_read().items():
            for name in sorted(names):
                _unknown_field(
                    name, f"the formatter's {part} reads", task, doc, ("formatter", *part.split("."))
                )
        return formatter
    if task.runner_config.save_formatted_output:
        raise doc.error(
            "save_formatted_output is set but the task has no formatter",
            "runner_config",
            "save_formatted_output",
            hint="add formatter: {type: chat} or {type: jinja, fields: ...}",
        )
    return None


def _is_engine_spec(spec: dict[str, Any], doc: YamlDoc, key: tuple[Any, ...]) -> bool:
    if "type" in spec and "class_path" not in spec:
        return str(spec["type"]) in engines
    if "class_path" in spec:
        cls, _ = resolve_class(block_registry, spec, doc=doc, key=key)
        return isinstance(cls, type) and issubclass(cls, Engine)
    return False


def _override_engine(
    name: str,
    block: dict[str, Any],
    overrides: Overrides,
    pool: EnginePool,
    block_doc: YamlDoc,
    block_key: tuple[Any, ...],
) -> Engine:
    """The engine that replaces block ``name``: from the override file's ``engines`` section
    (errors point at its lines) and/or the ``--engine`` flags (errors name the flag).

    Every block gets the same engine (one concurrency limit, one model load or server). The
    override swaps *where* requests go, not how the builder samples: a block with its own
    ``sampling`` gets a view of that engine with the block's sampling, the override's
    ``sampling`` keys on top."""
    spec = {"name": name, **(overrides.engine or {})}
    doc, key = (overrides.doc, ("engines",)) if overrides.engine_from_file else (None, ())
    try:
        engine = pool.get(spec, doc, key)
    except ConfigError as err:
        last = (err.field or "type").split(".")[-1]
        flag = overrides.engine_flags.get(last)
        if flag is None:
            raise
        raise ConfigError(err.message, field=flag, hint=err.hint) from None
    init_args = block.get("init_args")
    own = block.get("sampling", init_args.get("sampling") if isinstance(init_args, dict) else None) or {}
    if not own:
        return engine
    on_top = (overrides.engine or {}).get("sampling") or {}
    try:
        params = engine.default_params.merged(**own).merged(**on_top)
    except TypeError as exc:
        raise block_doc.error(f"bad sampling for block '{name}': {exc}", *block_key, "sampling") from None
    return EngineView(engine, name, params)


def _check_fields(block: FilterBlock, task: Task, doc: YamlDoc, key: tuple[Any, ...]) -> None:
    """A filter's ``fields`` must name fields of the task's records: a typo would make it
    read nothing (every record "too short", a stalled run) instead of failing here."""
    for i, name in enumerate(block.fields or ()):
        _unknown_field(str(name), f"'{block.name}' reads field", task, doc, (*key, "fields", i))


def _unknown_field(name: str, what: str, task: Task, doc: YamlDoc, key: tuple[Any, ...]) -> None:
    """A field the task's records do not have is an error before any model call: the whole
    generation would otherwise run and then fail (or filter everything) on it."""
    known = task.OUTPUT_DATA_TYPE.field_names()
    if name.split(".")[0] in known:
        return
    record = task.OUTPUT_DATA_TYPE.__name__
    raise doc.error(
        f"{what} '{name}', which {record} records lack",
        *key,
        hint=did_you_mean(name, known) or f"{record} fields: {', '.join(known)}",
    )


def _build_block(
    spec: dict[str, Any],
    doc: YamlDoc,
    key: tuple[Any, ...],
    pool: EnginePool,
    built: dict[str, Any] | None = None,
) -> Any:
    spec = dict(spec)
    runtime: dict[str, Any] = {}
    engine_spec = spec.get("engine")
    if isinstance(engine_spec, dict):  # e.g. an LLM judge with an engine of its own
        runtime["engine"] = pool.get(engine_spec, doc, (*key, "engine"))
        spec.pop("engine")
    elif isinstance(engine_spec, str):  # ... or naming an engine block of the builder
        runtime["engine"] = _engine_block(engine_spec, built or {}, doc, (*key, "engine"))
        spec.pop("engine")
    kind = spec.get("type")
    if "class_path" not in spec and isinstance(kind, str) and (theirs := unsupported_block(kind)):
        raise doc.error(theirs[0], *key, "type", hint=theirs[1])
    if "class_path" not in spec and isinstance(kind, str) and kind not in block_registry:
        # "vlm" is a misspelled engine more often than a block: suggest from both registries
        names = [*block_registry.names(), *engines.names()]
        raise doc.error(
            f"unknown block or engine '{kind}'",
            *key,
            "type",
            hint=did_you_mean(kind, names)
            or f"blocks: {', '.join(block_registry.names())}; engines: {', '.join(engines.names())}",
        )
    return build_component(block_registry, spec, doc=doc, key=key, runtime_kwargs=runtime)


def _engine_block(name: str, built: dict[str, Any], doc: YamlDoc, key: tuple[Any, ...]) -> Engine:
    """The engine block ``name`` among the builder's blocks built so far."""
    engine = built.get(name)
    if isinstance(engine, Engine):
        return engine
    names = [n for n, b in built.items() if isinstance(b, Engine)]
    raise doc.error(
        f"'{name}' is not an engine block of this builder",
        *key,
        hint=did_you_mean(name, names)
        or (f"engine blocks: {', '.join(names)}" if names else "declare the engine block first")
        + " (engine blocks must come before the blocks that use them)",
    )
