"""Tasks: what data to make. One Task is built from one task.yaml.

The mandatory keys and the reserved sections are constructor parameters of ``Task``; every
other key of the YAML is a keyword argument of the concrete subclass's ``__init__`` (the
loader checks them against the constructor's signature, names and types). Subclasses
choose their record types through ``INPUT_DATA_TYPE`` / ``OUTPUT_DATA_TYPE`` and may
override ``instantiate_*_example`` and ``is_complete``.
"""

from __future__ import annotations

import difflib
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fms_dgt.builders.samplers import Samplers
from fms_dgt.config.schema import DataSourceConfig, DatastoreConfig, RunnerConfig
from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.datapoint import DataPoint, as_dict
from fms_dgt.datastores.readers import expand_paths, iter_source_records
from fms_dgt.datastores.roles import TaskStores
from fms_dgt.errors import ConfigError
from fms_dgt.registry import did_you_mean

if TYPE_CHECKING:
    from fms_dgt.ledger import Ledger

log = logging.getLogger("fms_dgt.run")


class Task:
    """Base task: identity, run configuration and stores."""

    INPUT_DATA_TYPE: ClassVar[type[DataPoint]] = DataPoint
    OUTPUT_DATA_TYPE: ClassVar[type[DataPoint]] = DataPoint
    # task.yaml keys this task accepts but does not use, with why (another format's fields
    # that have no counterpart here): each is named in one warning instead of an error
    COMPAT_FIELDS: ClassVar[dict[str, str]] = {}

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
        samplers: dict[str, Any] | None = None,
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
        self.stores = TaskStores(
            output_dir=self.output_dir, task_name=task_name, config=self.datastore_config.model_dump()
        )
        self.ledger: Ledger | None = None  # set by the run that drives this task
        self._warned_keys: set[str] = set()
        # values drawn per builder call (topics, personas...): see fms_dgt.builders.samplers
        self.samplers = Samplers(samplers, self.base_dir, yaml_doc) if samplers else None

    @property
    def name(self) -> str:
        return self.task_name

    @property
    def task_dir(self) -> Path:
        """``<output_dir>/<task_name>``: nested folders for a ``/``-separated name."""
        return self.output_dir / self.task_name

    @property
    def base_dir(self) -> Path:
        """Where relative paths in the task.yaml start: the file's own folder."""
        return self.yaml_doc.path.parent if self.yaml_doc else Path.cwd()

    @property
    def accepted_count(self) -> int:
        """Records so far that count towards the task's goal (after postprocessing, plus
        those accepted since): what ``is_complete`` overrides usually compare."""
        return self.ledger.kept if self.ledger is not None else 0

    # ---- records ------------------------------------------------------------------------
    def instantiate_input_example(self, **kwargs: Any) -> DataPoint:
        """Build an ``INPUT_DATA_TYPE`` record (seed or input row). Unknown keys are dropped;
        missing required fields raise TypeError, which the loader reports with the source."""
        kwargs.setdefault("task_name", self.task_name)
        return _instantiate(self.INPUT_DATA_TYPE, kwargs)

    def instantiate_output_example(self, **kwargs: Any) -> DataPoint:
        kwargs.setdefault("task_name", self.task_name)
        return _instantiate(self.OUTPUT_DATA_TYPE, kwargs)

    def config_error(self, message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        """A configuration error located at ``keys`` of the task.yaml (file, line, field),
        for the checks a task's constructor makes on its own keys."""
        if self.yaml_doc is not None:
            return self.yaml_doc.error(message, *keys, hint=hint)
        return ConfigError(message, field=".".join(map(str, keys)) or None, hint=hint)

    def is_complete(self) -> bool:
        raise NotImplementedError

    def draw_samples(self, call_index: int) -> dict[str, Any]:
        """The sampler values for builder call ``call_index`` (empty without samplers): the
        same for the same seed and index, so a resumed run asks what it would have asked."""
        if self.samplers is None:
            return {}
        return self.samplers.draw(self.runner_config.seed, call_index)

    # ---- reading seeds and input rows ---------------------------------------------------
    def _input_from(
        self,
        raw: Any,
        *,
        source: tuple[Path | None, int | None],
        keys: tuple[Any, ...],
        what: str,
        **extra: Any,
    ) -> DataPoint:
        """``raw`` as an input record; a bad one is a ConfigError at its file and line, with
        a did-you-mean when a required field is missing next to a key that looks like it
        (a CSV header typo)."""
        if not isinstance(raw, dict):
            raise self._located(f"{what} must be a mapping, got {type(raw).__name__}", source, keys)
        self._note_unknown_keys(raw, source, keys, what.rstrip("0123456789 "))
        try:
            return self.instantiate_input_example(**{**raw, **extra})
        except (TypeError, ValueError) as exc:
            needed = self.INPUT_DATA_TYPE.required_fields()
            missing = [f for f in needed if f not in raw]
            msg = f"{what} is missing {', '.join(missing)}" if missing else f"bad {what}: {exc}"
            strays = [k for k in raw if isinstance(k, str) and k not in self.INPUT_DATA_TYPE.field_names()]
            typos = [
                (c[0], m) for m in missing if (c := difflib.get_close_matches(m, strays, n=1, cutoff=0.6))
            ]
            if typos:
                hint = "; ".join(f"'{typo}' looks like a misspelling of '{field}'" for typo, field in typos)
            elif missing and strays:  # the data names it otherwise: say how to map a column
                hint = (
                    f"{self.INPUT_DATA_TYPE.__name__} needs {', '.join(needed)}; this row has {', '.join(strays)} "
                    f"(map a column with columns: {{{missing[0]}: <column>}} under the data section)"
                )
            else:
                hint = f"{self.INPUT_DATA_TYPE.__name__} needs {', '.join(needed)}"
            raise self._located(msg, source, keys, hint) from None

    def _note_unknown_keys(
        self, raw: dict[str, Any], source: tuple[Path | None, int | None], keys: tuple[Any, ...], what: str
    ) -> None:
        """Keys that are no field of the record type are dropped; say so once per key (a
        misspelled optional field would otherwise vanish without a word). Files may carry
        extra columns on purpose, so this is a warning, not an error."""
        known = self.INPUT_DATA_TYPE.field_names()
        for key in raw:
            if key in known or key in self._warned_keys:
                continue
            self._warned_keys.add(key)
            path, line = source
            if path is not None:
                where = f"{path}:{line}" if line else str(path)
            elif self.yaml_doc is not None:
                where = f"{self.yaml_doc.path}:{self.yaml_doc.line_of(*keys, key)}"
            else:
                where = ".".join(map(str, keys))
            close = did_you_mean(str(key), known)
            log.warning(
                "%s: %s key '%s' is not a field of %s and is ignored%s",
                where,
                what,
                key,
                self.INPUT_DATA_TYPE.__name__,
                f" ({close})" if close else "",
            )

    def _located(
        self,
        message: str,
        source: tuple[Path | None, int | None],
        keys: tuple[Any, ...],
        hint: str | None = None,
    ) -> ConfigError:
        path, line = source
        if path is not None and (self.yaml_doc is None or path != self.yaml_doc.path):
            return ConfigError(message, file=path, line=line, field=str(keys[0]) if keys else None, hint=hint)
        if self.yaml_doc is not None:
            return self.yaml_doc.error(message, *keys, hint=hint)
        return ConfigError(message, field=".".join(map(str, keys)) or None, hint=hint)


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
        seed_datastore: DataSourceConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._seed_configs = (seed_examples, seed_datastore)
        self.seed_examples: list[DataPoint] = []
        self._synthetic: list[DataPoint] = []
        self._synthetic_seen = 0

    def load_seed_examples(self) -> list[DataPoint]:
        """Read and type-check all seeds; any bad record is a located ConfigError."""
        inline, store = self._seed_configs
        seeds: list[DataPoint] = []
        doc_path = self.yaml_doc.path if self.yaml_doc else None
        for i, raw in enumerate(inline or []):
            seeds.append(
                self._input_from(
                    raw,
                    source=(doc_path, None),
                    keys=("seed_examples", i),
                    what=f"seed example {i}",
                    is_seed=True,
                )
            )
        if store is not None:
            for path, line, i, raw in iter_source_records(store, self.base_dir, self.yaml_doc):
                seeds.append(
                    self._input_from(
                        raw, source=(path, line), keys=(f"record {i}",), what="seed example", is_seed=True
                    )
                )
        if not seeds and store is not None:
            names = ", ".join(p.name for p in expand_paths(store.data_path, self.base_dir))
            raise self._located(
                f"a generation task needs at least one seed example, and {names} holds no records",
                (doc_path, None),
                ("seed_datastore", "data_path"),
                hint="fill the file, point data_path at another one, or add seed_examples: [...]",
            )
        if not seeds:
            raise self._located(
                "a generation task needs at least one seed example",
                (doc_path, None),
                ("seed_examples",),
                hint="add seed_examples: [...] or seed_datastore: {data_path: seeds.jsonl}",
            )
        self.seed_examples = seeds
        return seeds

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


class TransformationTask(Task):
    """Transforms every record of ``data`` (inline list or a data source) once."""

    def __init__(self, *, data: list[dict[str, Any]] | DataSourceConfig | None = None, **kwargs: Any) -> None:
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
                (doc.path if doc else None, None, i, raw) for i, raw in enumerate(self._data_config)
            )
            for path, _, i, raw in source:
                yield self._input_from(raw, source=(path, None), keys=("data", i), what=f"input record {i}")
            return
        for path, line, i, raw in iter_source_records(
            self._data_config, self.base_dir, self.yaml_doc, "data"
        ):
            yield self._input_from(raw, source=(path, line), keys=(f"data[{i}]",), what=f"input record {i}")

    def is_complete(self) -> bool:
        """Default: one pass over ``data`` is done. Checked before each chunk is scheduled,
        so an override (say, ``self.accepted_count >= 1000 or self.pass_complete``) stops a
        pass over a large input early; the records so far are postprocessed and formatted."""
        return self.pass_complete


def _instantiate(cls: type[DataPoint], kwargs: dict[str, Any]) -> DataPoint:
    names = set(cls.field_names())
    return cls(**{k: v for k, v in kwargs.items() if k in names})
