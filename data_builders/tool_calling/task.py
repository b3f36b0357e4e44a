"""Task and record types of the ``tool_calling`` builder: the tools (read and checked when
the task is built, so every mistake in them is a located error at ``--validate``), the
execution limits and the shape of a kept exchange."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fms_dgt import DataPoint, GenerationTask
from fms_dgt.config.yaml_loader import YamlDoc, load_yaml
from fms_dgt.errors import ConfigError
from fms_dgt.sandbox.limits import LimitError, Limits

from .tools import Tool, parse_tools

MAX_STEPS = 5
MAX_CALLS = 8
# tool implementations are small functions: far less than the sandbox's defaults
DEFAULT_SANDBOX: dict[str, Any] = {"cpu_seconds": 2, "wall_seconds": 10, "memory_mb": 256}


def read_tools_file(path: Path) -> YamlDoc:
    """A tools file with the line of each key. JSON is read as YAML (a superset) for the
    lines; JSON that is not valid YAML (tab indentation) is read as JSON, without lines,
    and a JSON syntax error names its line."""
    if path.suffix.lower() != ".json":
        return load_yaml(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the tools file: {exc}", file=path) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    try:
        return load_yaml(path)
    except ConfigError:
        return YamlDoc(path, data, {})


@dataclass(kw_only=True)
class ToolRequest(DataPoint):
    """A seed: an example user request (shown to the model as the kind of request to write)."""

    request: str


@dataclass(kw_only=True)
class ToolExchange(DataPoint):
    """One kept exchange. ``messages``: OpenAI chat messages (user, assistant with
    ``tool_calls``, one ``tool`` message per call, more rounds in a multi-step exchange,
    the final assistant answer). ``tools``: the definitions the model was given."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)


class ToolCallingTask(GenerationTask):
    """task.yaml keys (besides the usual ones):

    - ``tools``: the tools, ``{path: tools.yaml}`` (YAML or JSON, relative to the task.yaml)
      or an inline list; each an OpenAI function tool with ``implementation: module:function``
      (run in the sandbox; the module is found next to the tools file or the task.yaml) or
      ``endpoint: http://...`` (POST of the JSON arguments; not sandboxed).
    - ``max_steps``: rounds of calls (1..5, default 2): after each round the model sees the
      results and may make further calls; 1 means single or parallel calls only.
    - ``max_calls``: calls allowed in one round (1..8, default 3); more is a rejection.
    - ``judge``: ask the ``judge`` engine block whether the calls answer the request
      (default true).
    - ``sandbox``: limits for running implementations (docs/sandbox.md); default
      ``{cpu_seconds: 2, wall_seconds: 10, memory_mb: 256}``.
    - ``http_timeout``: seconds an endpoint may take (default 10).
    """

    INPUT_DATA_TYPE = ToolRequest
    OUTPUT_DATA_TYPE = ToolExchange

    def __init__(
        self,
        *,
        tools: dict[str, str] | list[dict[str, Any]] | None = None,
        max_steps: int = 2,
        max_calls: int = 3,
        judge: bool = True,
        sandbox: dict[str, Any] | None = None,
        http_timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= max_steps <= MAX_STEPS:
            raise self.config_error(
                f"max_steps must be between 1 and {MAX_STEPS}, got {max_steps}", "max_steps"
            )
        if not 1 <= max_calls <= MAX_CALLS:
            raise self.config_error(
                f"max_calls must be between 1 and {MAX_CALLS}, got {max_calls}", "max_calls"
            )
        if not 0 < http_timeout <= 600:
            raise self.config_error(
                f"http_timeout must be in (0, 600] seconds, got {http_timeout}", "http_timeout"
            )
        try:
            self.limits = Limits.from_config({**DEFAULT_SANDBOX, **(sandbox or {})})
        except LimitError as exc:
            keys = ("sandbox", exc.key) if sandbox and exc.key in sandbox else ("sandbox",)
            raise self.config_error(str(exc), *keys, hint="see docs/sandbox.md for the keys") from None
        self.max_steps, self.max_calls = max_steps, max_calls
        self.judge, self.http_timeout = judge, float(http_timeout)
        self.tools, self.python_path = self._load_tools(tools)
        self.tools_by_name: dict[str, Tool] = {t.name: t for t in self.tools}

    def _load_tools(
        self, config: dict[str, str] | list[dict[str, Any]] | None
    ) -> tuple[list[Tool], list[Path]]:
        if config is None:
            raise self.config_error(
                "tool_calling needs 'tools': the functions the model may call",
                hint="tools: {path: tools.yaml} or an inline list of function tools",
            )
        base = self.base_dir.resolve()
        if isinstance(config, list):
            return parse_tools(
                config,
                lambda msg, *keys, hint=None: self.config_error(msg, "tools", *keys, hint=hint),
                [base],
            ), [base]
        unknown = [k for k in config if k != "path"]
        if unknown or "path" not in config:
            raise self.config_error(
                f"unknown key '{unknown[0]}' in tools" if unknown else "tools needs 'path'",
                "tools",
                *unknown[:1],
                hint="tools: {path: tools.yaml} (a YAML or JSON file of function tools)",
            )
        path = (base / config["path"]).resolve()
        if not path.is_file():
            raise self.config_error(
                f"no tools file '{config['path']}' (looked for {path})",
                "tools",
                "path",
                hint="the path is relative to the task.yaml",
            )
        doc = read_tools_file(path)
        entries: Any = doc.data
        prefix: tuple[str, ...] = ()
        if isinstance(entries, dict) and "tools" in entries:
            entries, prefix = entries["tools"], ("tools",)
        search = list(dict.fromkeys([path.parent, base]))

        def error_at(message: str, *keys: Any, hint: str | None = None) -> ConfigError:
            return doc.error(message, *prefix, *keys, hint=hint)

        return parse_tools(entries, error_at, search), search

    def load_seed_examples(self) -> list[DataPoint]:
        """Seeds (example requests) are optional: the tools themselves say what to ask."""
        if self._seed_configs == (None, None):
            self.seed_examples = []
            return []
        return super().load_seed_examples()

    def output_to_example(self, record: DataPoint) -> DataPoint | None:
        """An accepted exchange's user request, as an example request for later calls
        (``machine_batch_size`` of them are shown with the seeds)."""
        messages = getattr(record, "messages", None) or [{}]
        request = messages[0].get("content")
        if not isinstance(request, str):
            return None
        return self.instantiate_input_example(request=request, is_seed=False)
