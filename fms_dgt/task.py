"""Tasks: what data to make. One Task is built from one task.yaml.

The mandatory keys and the reserved sections are constructor parameters of ``Task``; every
other key of the YAML is a keyword argument of the concrete subclass's ``__init__`` (the
loader rejects keys no constructor in the chain accepts, with a did-you-mean). Subclasses
choose their record types through ``INPUT_DATA_TYPE`` / ``OUTPUT_DATA_TYPE`` and may
override ``instantiate_*_example`` and ``is_complete``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from fms_dgt.config.schema import DatastoreConfig, RunnerConfig, SeedDatastoreConfig
from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.datapoint import DataPoint, as_dict
from fms_dgt.datastores.base import JSONL_ONLY_STORES, RECORD_STORES, Datastore
from fms_dgt.datastores.readers import expand_paths, format_of, read_located_records
from fms_dgt.errors import ConfigError
from fms_dgt.registry import datastores, did_you_mean

log = logging.getLogger("fms_dgt.run")


class Task:
    """Base task: identity, run configuration and datastores."""

    INPUT_DATA_TYPE: ClassVar[type[DataPoint]] = DataPoint
    OUTPUT_DATA_TYPE: ClassVar[type[DataPoint]] = DataPoint

    def __init__(
        self,
        *,
        task_name: str,
        task_description: str,
        created_by: str,
        data_builder: str,
        runner_config: RunnerConfig | None = None,
        datastore: DatastoreConfig | None = None,
        formatter: dict[str, Any] | None = None,
        filters: list[dict[str, Any]] | None = None,
        output_dir: str | Path = "output",
        yaml_doc: YamlDoc | None = None,
    ) -> None:
        self.task_name = task_name
        self.task_description = task_description
        self.created_by = created_by
        self.data_builder = data_builder
        self.runner_config = runner_config or RunnerConfig()
        self.datastore_config = datastore or DatastoreConfig()
        self.formatter_config = formatter
        self.filter_configs = list(filters or [])
        self.output_dir = Path(output_dir)
        self.yaml_doc = yaml_doc
        self.rng = random.Random(self.runner_config.seed)
        # the runtime keeps these current while the task runs
        self.accepted_count = 0
        self._stores: dict[str, Datastore] = {}

    @property
    def name(self) -> str:
        return self.task_name

    @property
    def task_dir(self) -> Path:
        return self.output_dir / self.task_name

    # ---- records ------------------------------------------------------------------------
    def instantiate_input_example(self, **kwargs: Any) -> DataPoint:
        """Build an ``INPUT_DATA_TYPE`` record (seed or input row). Unknown keys are dropped;
        missing required fields raise TypeError, which the loader reports with the source."""
        kwargs.setdefault("task_name", self.task_name)
        return _instantiate(self.INPUT_DATA_TYPE, kwargs)

    def instantiate_output_example(self, **kwargs: Any) -> DataPoint:
        kwargs.setdefault("task_name", self.task_name)
        return _instantiate(self.OUTPUT_DATA_TYPE, kwargs)

    # ---- datastores -----------------------------------------------------------------
    def datastore(self, store_name: str, *, output_data_format: str | None = None) -> Datastore:
        """The task's store called ``store_name`` (``data``, ``final_data``, ``rejected``...)."""
        store = self._stores.get(store_name)
        if store is None:
            cfg = self.datastore_config.model_dump()
            kind = cfg.pop("type")
            if output_data_format:
                cfg["output_data_format"] = output_data_format
            store = datastores.get(kind)(
                store_name=store_name, output_dir=self.output_dir, task_name=self.task_name, **cfg
            )
            self._stores[store_name] = store
        return store

    def clear_datastores(self, postprocessing_steps: int) -> None:
        """Empty every store this task writes (for ``--restart``), through the store's own
        ``clear`` so a plugin store (a database, an object store) is emptied too, not just
        the files in the task folder."""
        names = [*RECORD_STORES, *(f"postproc_data_{i}" for i in range(1, postprocessing_steps + 1))]
        for name in names:
            fmt = "jsonl" if name in JSONL_ONLY_STORES else None
            self.datastore(name, output_data_format=fmt).clear()

    def close_datastores(self) -> None:
        for store in self._stores.values():
            store.close()

    def is_complete(self) -> bool:
        raise NotImplementedError


class GenerationTask(Task):
    """Makes ``num_outputs_to_generate`` new records from seed examples.

    Seeds come from ``seed_examples`` (inline) and/or ``seed_datastore`` (files). Each builder
    call receives ``seed_batch_size`` seeds plus up to ``machine_batch_size`` records accepted
    so far, drawn with ``self.rng`` (so a seeded task samples reproducibly).
    """

    SYNTHETIC_POOL_SIZE: ClassVar[int] = 512

    def __init__(
        self,
        *,
        seed_examples: list[dict[str, Any]] | None = None,
        seed_datastore: SeedDatastoreConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._seed_configs = (seed_examples, seed_datastore)
        self.seed_examples: list[DataPoint] = []
        self._synthetic: list[DataPoint] = []
        self._synthetic_seen = 0
        self._warned_seed_keys: set[str] = set()

    def load_seed_examples(self) -> list[DataPoint]:
        """Read and type-check all seeds; any bad record is a located ConfigError."""
        inline, store = self._seed_configs
        seeds: list[DataPoint] = []
        if inline is not None:
            if not isinstance(inline, list):
                raise self._error("seed_examples must be a list of mappings", "seed_examples")
            for i, raw in enumerate(inline):
                seeds.append(self._seed_from(raw, source=None, keys=("seed_examples", i)))
        if store is not None:
            for path, line, i, raw in iter_datastore_records(store, self._base_dir(), self.yaml_doc):
                seeds.append(self._seed_from(raw, source=(path, line), keys=(f"record {i}",)))
        if not seeds and store is not None:
            names = ", ".join(p.name for p in expand_paths(store.data_path, self._base_dir()))
            raise self._error(
                f"a generation task needs at least one seed example, and {names} holds no records",
                "seed_datastore",
                "data_path",
                hint="fill the file, point data_path at another one, or add seed_examples: [...]",
            )
        if not seeds:
            raise self._error(
                "a generation task needs at least one seed example",
                "seed_examples",
                hint="add seed_examples: [...] or seed_datastore: {data_path: seeds.jsonl}",
            )
        self.seed_examples = seeds
        return seeds

    def _seed_from(
        self, raw: Any, *, source: tuple[Path, int | None] | None, keys: tuple[Any, ...]
    ) -> DataPoint:
        if not isinstance(raw, dict):
            raise self._error(f"a seed example must be a mapping, got {type(raw).__name__}", *keys)
        self._note_unknown_seed_keys(raw, source, keys)
        try:
            record = self.instantiate_input_example(**{**raw, "is_seed": True})
        except (TypeError, ValueError) as exc:
            needed = self.INPUT_DATA_TYPE.required_fields()
            missing = [f for f in needed if f not in raw]
            msg = f"seed example is missing {', '.join(missing)}" if missing else f"bad seed example: {exc}"
            if source is not None:
                raise ConfigError(
                    msg,
                    file=source[0],
                    line=source[1],
                    field=keys[0],
                    hint=f"{self.INPUT_DATA_TYPE.__name__} needs {', '.join(needed)}",
                ) from None
            raise self._error(
                msg, *keys, hint=f"{self.INPUT_DATA_TYPE.__name__} needs {', '.join(needed)}"
            ) from None
        return record

    def _note_unknown_seed_keys(
        self, raw: dict[str, Any], source: tuple[Path, int | None] | None, keys: tuple[Any, ...]
    ) -> None:
        """Seed keys that are no field of the record type are dropped; say so once per key (a
        misspelled optional field would otherwise vanish without a word). Files may carry
        extra columns on purpose, so this is a warning, not an error."""
        known = self.INPUT_DATA_TYPE.field_names()
        for key in raw:
            if key in known or key in self._warned_seed_keys:
                continue
            self._warned_seed_keys.add(key)
            if source is not None:
                where = f"{source[0]}:{source[1]}" if source[1] else str(source[0])
            elif self.yaml_doc is not None:
                where = f"{self.yaml_doc.path}:{self.yaml_doc.line_of(*keys, key)}"
            else:
                where = "seed_examples"
            close = did_you_mean(str(key), known)
            log.warning(
                "%s: seed key '%s' is not a field of %s and is ignored%s",
                where,
                key,
                self.INPUT_DATA_TYPE.__name__,
                f" ({close})" if close else "",
            )

    def remember(self, record: DataPoint) -> None:
        """Offer an accepted record to the in-context pool (a reservoir, so memory is flat)."""
        example = self.output_to_example(record)
        if example is None:
            return
        self._synthetic_seen += 1
        if len(self._synthetic) < self.SYNTHETIC_POOL_SIZE:
            self._synthetic.append(example)
        else:
            j = self.rng.randrange(self._synthetic_seen)
            if j < self.SYNTHETIC_POOL_SIZE:
                self._synthetic[j] = example

    def output_to_example(self, record: DataPoint) -> DataPoint | None:
        """Turn an accepted output into an in-context example (None to never reuse it)."""
        try:
            return self.instantiate_input_example(**{**as_dict(record), "is_seed": False})
        except (TypeError, ValueError):
            return None

    def sample_examples(self) -> list[DataPoint]:
        """In-context examples for one builder call: seeds mixed with accepted records."""
        rc = self.runner_config
        seeds = self.rng.sample(self.seed_examples, min(rc.seed_batch_size, len(self.seed_examples)))
        synth = self.rng.sample(self._synthetic, min(rc.machine_batch_size, len(self._synthetic)))
        return seeds + synth

    def is_complete(self) -> bool:
        """Default: enough accepted records. The runtime re-checks after postprocessing."""
        return self.accepted_count >= self.runner_config.num_outputs_to_generate

    def _base_dir(self) -> Path:
        return self.yaml_doc.path.parent if self.yaml_doc else Path.cwd()

    def _error(self, message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        if self.yaml_doc is not None:
            return self.yaml_doc.error(message, *keys, hint=hint)
        return ConfigError(message, field=".".join(map(str, keys)), hint=hint)


class TransformationTask(Task):
    """Transforms every record of ``data`` (inline list or a datastore config) once."""

    def __init__(
        self, *, data: list[dict[str, Any]] | SeedDatastoreConfig | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if data is None:
            msg, hint = "a transformation task needs 'data'", "data: [...] or data: {data_path: input.jsonl}"
            raise self.yaml_doc.error(msg, hint=hint) if self.yaml_doc else ConfigError(msg, hint=hint)
        self._data_config = data
        self.pass_complete = False

    def iter_input(self) -> Iterator[DataPoint]:
        """Stream input rows as ``INPUT_DATA_TYPE`` records."""
        if isinstance(self._data_config, list):
            doc = self.yaml_doc
            source: Iterator[tuple[Path | None, int | None, int, Any]] = (
                (doc.path if doc else None, doc.line_of("data", i) if doc else None, i, raw)
                for i, raw in enumerate(self._data_config)
            )
        else:
            source = iter_datastore_records(self._data_config, self._base_dir(), self.yaml_doc, "data")
        for path, line, i, raw in source:
            try:
                if not isinstance(raw, dict):
                    raise TypeError(f"expected a mapping, got {type(raw).__name__}")
                yield self.instantiate_input_example(**raw)
            except (TypeError, ValueError) as exc:
                missing = [f for f in self.INPUT_DATA_TYPE.required_fields() if f not in (raw or {})]
                detail = f"missing {', '.join(missing)}" if missing and isinstance(raw, dict) else str(exc)
                raise ConfigError(
                    f"bad input record {i}: {detail}", file=path, line=line, field=f"data[{i}]"
                ) from None

    def _base_dir(self) -> Path:
        return self.yaml_doc.path.parent if self.yaml_doc else Path.cwd()

    def is_complete(self) -> bool:
        """Default: one pass over ``data`` is done. Checked before each chunk is scheduled,
        so an override (say, ``self.accepted_count >= 1000 or self.pass_complete``) stops a
        pass over a large input early; the records so far are postprocessed and formatted."""
        return self.pass_complete


def iter_datastore_records(
    cfg: SeedDatastoreConfig, base_dir: Path, doc: YamlDoc | None = None, key: str = "seed_datastore"
) -> Iterator[tuple[Path, int | None, int, dict[str, Any]]]:
    """``(file, line, index, record)`` for every record ``cfg`` names. A problem with the
    config itself (unknown type, no matching file, unknown format) is reported at its line
    in the task.yaml; a problem inside a data file at the file's own line."""

    def at(err: ConfigError, *sub: str) -> ConfigError:
        if doc is None:
            return err.located(field=".".join((key, *sub)))
        return err.located(file=doc.path, line=doc.line_of(key, *sub), field=".".join((key, *sub)))

    if cfg.type not in ("default", "file"):
        raise at(
            ConfigError(
                f"unknown seed datastore type '{cfg.type}'",
                hint="use 'default' (files: jsonl, json, yaml, csv, parquet)",
            ),
            "type",
        )
    try:
        paths = expand_paths(cfg.data_path, base_dir)
    except ConfigError as err:
        raise at(err, "data_path") from None
    for path in paths:
        if format_of(path, cfg.data_format) is None:
            raise at(
                ConfigError(
                    f"cannot tell the format of '{path.name}'",
                    hint=f"name it *.jsonl, *.json, *.yaml, *.csv or *.parquet, or set {key}.data_format",
                ),
                "data_path",
            )
    n = 0
    for path in paths:
        for i, (line, raw) in enumerate(read_located_records(path, cfg.data_format)):
            yield path, line, i, raw
            n += 1
            if cfg.limit is not None and n >= cfg.limit:
                return


def _instantiate(cls: type[DataPoint], kwargs: dict[str, Any]) -> DataPoint:
    names = set(cls.field_names())
    return cls(**{k: v for k, v in kwargs.items() if k in names})
