"""Checking a task.yaml: first its identity (what the index needs), then, once its builder
and so its task class are known, everything else in one pass.

Every problem of a file is collected and reported together. What comes out
(``TaskConfig``) is what the factory builds the Task from without checking again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fms_dgt.config.components import check_args, signature_of
from fms_dgt.config.env import expand_env
from fms_dgt.config.includes import apply_includes
from fms_dgt.config.messages import validated
from fms_dgt.config.overrides import Overrides
from fms_dgt.config.schema import DatastoreConfig, TaskFile, TaskIdentity
from fms_dgt.config.yaml_loader import YamlDoc, load_yaml
from fms_dgt.errors import ConfigError, Problems
from fms_dgt.registry import datastores, did_you_mean

log = logging.getLogger("fms_dgt.run")

# sections whose ${VAR} are expanded before they are checked (so "${N:-50}" validates as 50)
_EXPANDED_FIRST = ("runner_config", "datastore", "seed_datastore", "data")
# constructor arguments the runtime supplies, never the YAML
RUNTIME_TASK_ARGS = frozenset({"output_dir", "yaml_doc"})
# store constructor arguments the runtime supplies
RUNTIME_STORE_ARGS = frozenset({"store_name", "output_dir", "task_name", "output_data_format"})


def read_task_identity(path: Path) -> tuple[YamlDoc, TaskIdentity]:
    """Load a task file and check the keys every task has (name, description, author,
    builder); all problems with them at once."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        got = "an empty file" if doc.data is None else type(doc.data).__name__
        raise ConfigError(
            f"a task file must be a mapping of keys, got {got}",
            file=path,
            line=1,
            hint="start with 'task_name: ...'",
        )
    return doc, validated(TaskIdentity, doc.data, doc)


@dataclass
class TaskConfig:
    """A checked task.yaml: the Task class and the keyword arguments it is built with."""

    doc: YamlDoc  # as written, with the override file's layers merged in (their lines kept)
    file: TaskFile
    task_cls: type
    kwargs: dict[str, Any]

    @property
    def name(self) -> str:
        return self.file.task_name


def check_task(doc: YamlDoc, task_cls: type, overrides: Overrides) -> TaskConfig:
    """Every check of a task.yaml that needs its task class (the builder's ``TASK_TYPE``)."""
    name = doc.data["task_name"]
    doc = apply_includes(doc)
    for layer, key in overrides.task_layers(name):
        doc = doc.overlay(layer, overrides.doc, key)
    data = dict(doc.data)
    for section in _EXPANDED_FIRST:
        if isinstance(data.get(section), dict):
            data[section] = expand_env(data[section], doc=doc, key=(section,))
    problems = Problems()
    file: TaskFile | None = None
    with problems.check():
        file = validated(TaskFile, data, doc)
    if file is None:  # the task-class keys are still checked, so every problem is said at once
        extras = {k: v for k, v in data.items() if k not in TaskFile.model_fields}
        with problems.check():
            _check_class_args(task_cls, expand_env(extras, doc=doc), doc)
        problems.raise_if_any()
    assert file is not None
    accepted = signature_of(task_cls).names
    for section in sorted(file.given()):
        if section not in accepted:
            problems.add(_unaccepted_section(section, task_cls, doc))
    kwargs: dict[str, Any] = {**file.given()}
    kwargs.update(task_name=file.task_name, data_builder=file.data_builder)
    with problems.check():  # free text may take ${VAR}; the name and builder are identifiers
        kwargs["task_description"] = expand_env(file.task_description, doc=doc, key=("task_description",))
        kwargs["created_by"] = expand_env(file.created_by, doc=doc, key=("created_by",))
    kwargs["runner_config"] = file.runner_config.model_copy(update=overrides.runner)
    kwargs["datastore"] = file.datastore
    with problems.check():
        kwargs.update(_check_class_args(task_cls, expand_env(file.extras(), doc=doc), doc))
    with problems.check():
        check_datastore(file.datastore, doc)
    problems.raise_if_any()
    return TaskConfig(doc, file, task_cls, kwargs)


def _check_class_args(task_cls: type, extras: dict[str, Any], doc: YamlDoc) -> dict[str, Any]:
    """The keys that are neither identity nor sections, checked against the task class
    (keys it accepts only for compatibility are named in a warning and not passed on)."""
    ignored: dict[str, str] = getattr(task_cls, "COMPAT_FIELDS", {})
    for key in [k for k in extras if k in ignored and k not in signature_of(task_cls).names]:
        extras = {k: v for k, v in extras.items() if k != key}
        where, line = doc.locate(key)
        log.warning("%s:%s: field '%s' is accepted but not used: %s", where, line, key, ignored[key])
    reserved = TaskFile.reserved() | TaskIdentity.model_fields.keys() | RUNTIME_TASK_ARGS
    return check_args(
        task_cls,
        extras,
        doc=doc,
        key=(),
        what="this task's class",
        reserved=reserved,
        also=sorted(TaskFile.reserved()),  # a misspelled section is the likelier mistake
    )


def _unaccepted_section(section: str, task_cls: type, doc: YamlDoc) -> ConfigError:
    hints = {
        "data": "a generation task takes seed_examples / seed_datastore, not data",
        "seed_examples": "a transformation task takes its input rows as data: [...]",
        "seed_datastore": "a transformation task reads its input from data: {data_path: ...}",
    }
    return doc.error(
        f"this task's class {task_cls.__name__} does not accept '{section}'", section, hint=hints.get(section)
    )


def check_datastore(config: DatastoreConfig, doc: YamlDoc) -> None:
    """The datastore type is registered and its extra keys are its constructor's."""
    if config.type not in datastores:
        raise doc.error(
            f"unknown datastore type '{config.type}'",
            "datastore",
            "type",
            hint=did_you_mean(config.type, datastores.names()) or f"known: {', '.join(datastores)}",
        )
    store_cls = datastores.get(config.type)
    extras = dict(config.model_extra or {})
    check_args(store_cls, extras, doc=doc, key=("datastore",), what="datastore", reserved=RUNTIME_STORE_ARGS)
