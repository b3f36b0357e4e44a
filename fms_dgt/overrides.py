"""The override file (``--config-path``): one place to retarget every task.

::

    engines:            # replaces every engine block of every builder
      type: openai
      model: gpt-4o-mini
      api_key_env: OPENAI_API_KEY
    runner_config:      # applies to every task
      num_outputs_to_generate: 100
    builders:
      simple:           # merged into data_builders/simple/simple.yaml
        postprocessors: []
    tasks:
      my_task:          # merged into that task.yaml ('*' for every task)
        runner_config: {seed_batch_size: 5}
"""

from __future__ import annotations

from typing import Any

from fms_dgt.config.schema import RunnerConfig, validate_section
from fms_dgt.config.yaml_loader import expand_env, load_yaml
from fms_dgt.factory import Overrides
from fms_dgt.registry import did_you_mean

SECTIONS = ("engines", "runner_config", "builders", "tasks")


def load_override_file(path: str) -> Overrides:
    doc = load_yaml(path)
    data: Any = doc.data or {}
    if not isinstance(data, dict):
        raise doc.error("an override file must be a mapping")
    for key in data:
        if key not in SECTIONS:
            raise doc.error(
                f"unknown section '{key}'",
                key,
                hint=did_you_mean(str(key), SECTIONS) or f"sections: {', '.join(SECTIONS)}",
            )
    ov = Overrides(doc=doc)
    if "runner_config" in data:
        runner = expand_env(data["runner_config"], doc=doc, key=("runner_config",))
        ov.file_runner = validate_section(RunnerConfig, runner, doc, "runner_config").model_dump(
            exclude_unset=True
        )
    if data.get("engines") is not None:
        engine = data["engines"]
        if not isinstance(engine, dict) or ("type" not in engine and "class_path" not in engine):
            raise doc.error("'engines' must be a mapping with 'type' (or 'class_path')", "engines")
        ov.engine = dict(engine)
        ov.engine_from_file = True
    for section in ("builders", "tasks"):
        value = data.get(section) or {}
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise doc.error(f"'{section}' must map names to mappings", section)
        setattr(ov, section, value)
    for name, task in ov.tasks.items():
        # checked here, so a bad value is reported at its line in this file, not in a task.yaml
        if isinstance(task.get("runner_config"), dict):
            key = ("tasks", name, "runner_config")
            validate_section(RunnerConfig, expand_env(task["runner_config"], doc=doc, key=key), doc, *key)
    return ov
