"""What the CLI and the override file (``--config-path``) change on top of the YAML files.

::

    engines:            # replaces every engine block of every builder
      type: openai
      model: gpt-4o-mini
      api_key_env: OPENAI_API_KEY
    runner_config:      # applies to every task
      num_outputs_to_generate: 100
    builders:
      simple:           # merged into data_builders/simple/simple.yaml
        blocks:
          - {name: llm1, sampling: {temperature: 0.2}}   # merged into the block named llm1
        postprocessors: []                               # an empty list clears the list
    tasks:
      my_task:          # merged into that task.yaml ('*' for every task)
        runner_config: {seed_batch_size: 5}

Mappings merge key by key; lists of named blocks merge by ``name`` (a new name is
appended, ``remove: true`` drops one, a different ``type`` replaces it); other values
replace. Precedence, most specific last: task.yaml, the file's ``runner_config``,
``tasks."*"``, ``tasks.<name>``, then CLI flags. Errors in what the file sets point at the
file's own lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fms_dgt.config.env import expand_env
from fms_dgt.config.messages import validated
from fms_dgt.config.schema import OverrideFile, RunnerConfig
from fms_dgt.config.yaml_loader import YamlDoc, load_yaml
from fms_dgt.errors import ConfigError, Problems


@dataclass
class Overrides:
    """The override file and CLI flags, checked."""

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

    def task_layers(self, name: str) -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
        """What the file changes in task ``name``, least specific first, each with its key
        in the file (for error locations)."""
        layers: list[tuple[dict[str, Any], tuple[Any, ...]]] = []
        if self.file_runner:
            layers.append(({"runner_config": self.file_runner}, ()))
        for key in ("*", name):
            if key in self.tasks:
                layers.append((self.tasks[key], ("tasks", key)))
        return layers


def load_override_file(path: str) -> Overrides:
    """Read and check ``path``; every problem in it is reported at once."""
    doc = load_yaml(path)
    file = validated(OverrideFile, doc.data, doc, what="a mapping of sections")
    problems = Problems()
    ov = Overrides(doc=doc, builders=file.builders, tasks=file.tasks)
    if file.runner_config is not None:
        with problems.check():
            runner = expand_env(file.runner_config, doc=doc, key=("runner_config",))
            ov.file_runner = validated(RunnerConfig, runner, doc, "runner_config").model_dump(
                exclude_unset=True
            )
    if file.engines is not None:
        ov.engine = dict(file.engines)
        ov.engine_from_file = True
    for name, task in ov.tasks.items():
        if "task_name" in task:
            problems.add(
                doc.error(
                    "an override cannot change task_name",
                    "tasks",
                    name,
                    "task_name",
                    hint="the task name identifies its output folder; edit the task.yaml instead",
                )
            )
        # checked here, so a bad value is reported at its line in this file, not in a task.yaml
        if isinstance(task.get("runner_config"), dict):
            key = ("tasks", name, "runner_config")
            with problems.check():
                validated(RunnerConfig, expand_env(task["runner_config"], doc=doc, key=key), doc, *key)
    problems.raise_if_any()
    return ov
