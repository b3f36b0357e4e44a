"""From index entries to live objects: a typed Task and its builder with blocks, filters,
postprocessors and formatter. Everything here runs before any model is called, so every
config error surfaces at load time (``--validate`` stops after this)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from fms_dgt.blocks.base import FilterBlock, FilterPostprocessor, Postprocessor
from fms_dgt.builders.base import DataBuilder
from fms_dgt.config.components import build_component, check_kwargs, resolve_class
from fms_dgt.config.schema import (
    RESERVED_TASK_FIELDS,
    DatastoreConfig,
    RunnerConfig,
    SeedDatastoreConfig,
    validate_section,
)
from fms_dgt.config.yaml_loader import YamlDoc, expand_env
from fms_dgt.engines.base import Engine
from fms_dgt.engines.view import EngineView
from fms_dgt.errors import ConfigError
from fms_dgt.formatters.base import Formatter
from fms_dgt.index import BuilderEntry, TaskEntry, merge
from fms_dgt.registry import blocks as block_registry
from fms_dgt.registry import datastores, did_you_mean, engines, formatters
from fms_dgt.task import GenerationTask, Task, TransformationTask

BUILDER_KEYS = ("name", "description", "blocks", "postprocessors", "metadata")
RUNTIME_TASK_KWARGS = {"output_dir", "yaml_doc"}
log = logging.getLogger("fms_dgt.run")


@dataclass
class Overrides:
    """What the CLI and ``--config-path`` change on top of the YAML files."""

    runner: dict[str, Any] = field(default_factory=dict)  # CLI flags: win over every file
    file_runner: dict[str, Any] = field(default_factory=dict)  # the file's global runner_config
    engine: dict[str, Any] | None = None
    builders: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the override file, so an error in what it sets points at its line (None: CLI flags)
    doc: YamlDoc | None = None
    engine_from_file: bool = False
    engine_flags: dict[str, str] = field(default_factory=dict)  # engine key -> CLI flag that set it

    def error(self, message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        """A ConfigError located in the override file (or at the CLI flag if there is none)."""
        if self.doc is not None:
            return self.doc.error(message, *keys, hint=hint)
        return ConfigError(message, field=".".join(map(str, keys)) or None, hint=hint)


class EnginePool:
    """One engine instance per distinct configuration, shared by every task that uses it (so
    an in-process model is loaded once and all tasks share its concurrency limit)."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}

    def get(self, spec: dict[str, Any], doc: YamlDoc | None, key: tuple[Any, ...]) -> Engine:
        cls, kwargs = resolve_class(engines, spec, doc=doc, key=key)
        ident = json.dumps(
            [f"{cls.__module__}:{cls.__qualname__}", {k: v for k, v in kwargs.items() if k != "name"}],
            sort_keys=True,
            default=str,
        )
        if ident not in self._engines:
            self._engines[ident] = build_component(engines, spec, doc=doc, key=key)
        return self._engines[ident]

    def all(self) -> list[Engine]:
        return list(self._engines.values())


@dataclass
class PreparedTask:
    task: Task
    builder: DataBuilder
    filters: list[FilterBlock]
    postprocessors: list[Postprocessor]
    formatter: Formatter | None
    raw_config: dict[str, Any]
    builder_config: dict[str, Any]


def _is_engine_spec(spec: dict[str, Any], doc: YamlDoc, key: tuple[Any, ...]) -> bool:
    if "type" in spec and "class_path" not in spec:
        return str(spec["type"]) in engines
    if "class_path" in spec:
        cls, _ = resolve_class(block_registry, spec, doc=doc, key=key)
        return isinstance(cls, type) and issubclass(cls, Engine)
    return False


def build_task(
    entry: TaskEntry, builder_cls: type[DataBuilder], overrides: Overrides, output_dir: str
) -> Task:
    doc = entry.doc
    for name in ("*", entry.name):
        if "task_name" in overrides.tasks.get(name, {}):
            raise overrides.error(
                "an override cannot change task_name",
                "tasks",
                name,
                "task_name",
                hint="the task name identifies its output folder; edit the task.yaml instead",
            )
    # most specific wins: the file's global runner_config, then its tasks."*", then tasks.<name>
    data = merge(doc.data, {"runner_config": overrides.file_runner}) if overrides.file_runner else doc.data
    data = merge(data, overrides.tasks.get("*", {}))
    data = merge(data, overrides.tasks.get(entry.name, {}))
    task_cls = builder_cls.TASK_TYPE
    kwargs: dict[str, Any] = {}
    # reserved sections take ${VAR} too (expanded first, so "${N:-50}" validates as 50)
    for section in ("runner_config", "datastore", "seed_datastore", "data"):
        if isinstance(data.get(section), dict):
            data = {**data, section: expand_env(data[section], doc=doc, key=(section,))}
    runner = validate_section(RunnerConfig, data.get("runner_config"), doc, "runner_config")
    kwargs["runner_config"] = runner.model_copy(
        update={k: v for k, v in overrides.runner.items() if v is not None}
    )
    datastore = validate_section(DatastoreConfig, data.get("datastore"), doc, "datastore")
    if datastore.type not in datastores:
        raise doc.error(
            f"unknown datastore type '{datastore.type}'",
            "datastore",
            "type",
            hint=did_you_mean(datastore.type, datastores.names()) or f"known: {', '.join(datastores)}",
        )
    kwargs["datastore"] = datastore
    for key, value in data.items():
        if key in ("runner_config", "datastore"):
            continue
        if key == "seed_datastore" or key == "data" and isinstance(value, dict):
            value = validate_section(SeedDatastoreConfig, value, doc, key)
        elif key == "data" and not isinstance(value, list):
            raise doc.error("'data' must be a list of records or a datastore mapping", key)
        elif key == "formatter" and value is not None and not isinstance(value, dict):
            raise doc.error("'formatter' must be a mapping with 'type' or 'class_path'", key)
        elif key == "filters" and not isinstance(value, list):
            raise doc.error("'filters' must be a list of block mappings", key)
        elif key not in RESERVED_TASK_FIELDS:
            value = expand_env(value, doc=doc, key=(key,))
        kwargs[key] = value
    _check_task_keys(task_cls, kwargs, doc)
    try:
        task = task_cls(**kwargs, output_dir=output_dir, yaml_doc=doc)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise doc.error(f"cannot build {task_cls.__name__}: {exc}") from None
    try:  # builds no file; checks a plugin datastore's own options now, not mid-run
        task.datastore("data")
    except (TypeError, ValueError) as exc:
        raise _datastore_error(exc, doc, datastore) from None
    if isinstance(task, GenerationTask):
        task.load_seed_examples()
    elif isinstance(task, TransformationTask):
        for _ in task.iter_input():  # validate every input row before any model call
            pass
    return task


def _datastore_error(exc: Exception, doc: YamlDoc, config: DatastoreConfig) -> ConfigError:
    """Turn a datastore constructor's complaint into a located error; an unexpected keyword
    (the base class names them) points at that key with a did-you-mean."""
    text = str(exc)
    marker = "unexpected datastore arguments:"
    if marker in text:
        bad = text.split(marker, 1)[1].split(",")[0].strip()
        known = [k for k in type(config).model_fields if k != bad]
        return doc.error(
            f"datastore '{config.type}' does not accept '{bad}'",
            "datastore",
            bad,
            hint=did_you_mean(bad, known) or f"accepted: {', '.join(known)}",
        )
    return doc.error(f"bad datastore configuration: {text}", "datastore")


def _check_task_keys(task_cls: type[Task], kwargs: dict[str, Any], doc: YamlDoc) -> None:
    try:
        check_kwargs(task_cls, kwargs, doc=doc, key=(), what="task", reserved=RUNTIME_TASK_KWARGS)
    except ConfigError as err:
        if err.field == "data" and issubclass(task_cls, GenerationTask):
            err = err.located()
            err.hint = "a generation task takes seed_examples / seed_datastore, not data"
        raise ConfigError(
            err.message.replace("task ", "this task's class ", 1),
            file=err.file,
            line=err.line,
            field=err.field,
            hint=err.hint,
        ) from None


def build_builder(
    task: Task, entry: BuilderEntry, builder_cls: type[DataBuilder], overrides: Overrides, pool: EnginePool
) -> PreparedTask:
    doc = entry.doc
    config = merge(doc.data, overrides.builders.get(entry.name, {}))
    for key in config:
        if key not in BUILDER_KEYS:
            raise doc.error(
                f"unknown builder key '{key}'",
                key,
                hint=did_you_mean(str(key), BUILDER_KEYS) or f"accepted: {', '.join(BUILDER_KEYS)}",
            )
    blocks: dict[str, Any] = {}
    filters: list[FilterBlock] = []
    for i, spec in enumerate(_spec_list(config.get("blocks"), doc, "blocks")):
        key = ("blocks", i)
        name = _block_name(spec, doc, key, blocks)
        if _is_engine_spec(spec, doc, key):
            if overrides.engine:
                blocks[name] = _override_engine(name, spec, overrides, pool, doc, key)
            else:
                blocks[name] = pool.get(spec, doc, key)
        else:
            blocks[name] = _build_block(spec, doc, key, pool, blocks)
            if isinstance(blocks[name], FilterBlock):
                _check_fields(blocks[name], task, doc, key)
                filters.append(blocks[name])
    task_doc = task.yaml_doc or doc
    for i, spec in enumerate(_spec_list(task.filter_configs, task_doc, "filters")):
        block = _build_block(spec, task_doc, ("filters", i), pool, blocks)
        if not isinstance(block, FilterBlock):
            raise task_doc.error(f"'{block.name}' is not a filter block", "filters", i)
        _check_fields(block, task, task_doc, ("filters", i))
        filters.append(block)
    postprocessors: list[Postprocessor] = []
    for i, spec in enumerate(_spec_list(config.get("postprocessors"), doc, "postprocessors")):
        block = _build_block(spec, doc, ("postprocessors", i), pool, blocks)
        if isinstance(block, FilterBlock):
            _check_fields(block, task, doc, ("postprocessors", i))
            block = FilterPostprocessor(block)
        elif not isinstance(block, Postprocessor):
            raise doc.error(
                f"'{spec.get('type', spec.get('class_path'))}' cannot be a postprocessor",
                "postprocessors",
                i,
                hint="use a filter or Postprocessor block",
            )
        postprocessors.append(block)
    formatter = None
    if task.formatter_config:
        formatter = build_component(formatters, task.formatter_config, doc=task_doc, key=("formatter",))
        _check_formatter_fields(formatter, task, task_doc)
    elif task.runner_config.save_formatted_output:
        raise task_doc.error(
            "save_formatted_output is set but the task has no formatter",
            "runner_config",
            "save_formatted_output",
            hint="add formatter: {type: chat} or {type: jinja, fields: ...}",
        )
    metadata = config.get("metadata") or {}
    builder = builder_cls(task, blocks, metadata)
    task_config = task.yaml_doc.data if task.yaml_doc else {}  # the task.yaml as written
    return PreparedTask(task, builder, filters, postprocessors, formatter, task_config, config)


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
    init_args = block.get("init_args") if isinstance(block.get("init_args"), dict) else {}
    own = block.get("sampling", init_args.get("sampling")) or {}
    if not own:
        return engine
    on_top = (overrides.engine or {}).get("sampling") or {}
    try:
        params = engine.default_params.merged(**own).merged(**on_top)
    except TypeError as exc:
        raise block_doc.error(f"bad sampling for block '{name}': {exc}", *block_key, "sampling") from None
    return EngineView(engine, name, params)


def _check_fields(block: FilterBlock, task: Task, doc: YamlDoc, key: tuple[Any, ...]) -> None:
    """A filter's ``fields`` should name fields of the task's records: a typo would make it
    read nothing (every record "too short", a stalled run) instead of failing here."""
    for i, name in enumerate(block.fields or ()):
        _unknown_field(str(name), f"'{block.name}' reads field", task, doc, (*key, "fields", i))


def _check_formatter_fields(formatter: Formatter, task: Task, doc: YamlDoc) -> None:
    for part, names in formatter.fields_read().items():
        for name in sorted(names):
            _unknown_field(name, f"the formatter's {part} reads", task, doc, ("formatter", *part.split(".")))


def _unknown_field(name: str, what: str, task: Task, doc: YamlDoc, key: tuple[Any, ...]) -> None:
    """A name close to a record field is a typo: an error now. Any other unknown name may be
    legitimate (a builder returning a richer record, ``{% if x is defined %}``): a warning."""
    known = task.OUTPUT_DATA_TYPE.field_names()
    if name.split(".")[0] in known:
        return
    record = task.OUTPUT_DATA_TYPE.__name__
    hint = did_you_mean(name, known)
    if hint:
        raise doc.error(f"{what} '{name}', which {record} records lack", *key, hint=hint)
    line = doc.line_of(*key)
    log.warning(
        "%s:%s: %s '%s', which %s records lack (fields: %s); it reads nothing unless the builder adds it",
        doc.path,
        line,
        what,
        name,
        record,
        ", ".join(known),
    )


def _spec_list(value: Any, doc: YamlDoc, key: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise doc.error(f"'{key}' must be a list of mappings", key)
    return value


def _block_name(spec: dict[str, Any], doc: YamlDoc, key: tuple[Any, ...], seen: dict[str, Any]) -> str:
    name = spec.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise doc.error(
            "every block needs a 'name' that is a Python identifier",
            *key,
            "name",
            hint="the builder reaches it as self.<name>",
        )
    if name in seen:
        raise doc.error(f"duplicate block name '{name}'", *key, "name")
    return name


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
