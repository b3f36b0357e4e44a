"""Task and record types of the ``tool_calling`` builder: the tools (read and checked when
the task is built, so every mistake in them is a located error at ``--validate``), the
execution limits and the shape of a kept exchange."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from fms_dgt import DataPoint, GenerationTask
from fms_dgt.config.yaml_loader import YamlDoc, load_yaml
from fms_dgt.errors import ConfigError
from fms_dgt.sandbox.limits import LimitError, Limits

from .exchange import MAX_CALLS
from .fmsdgt import FMSDGT_TOOL_KEYS, UNUSED_TOP, FromFmsDgt, read_fmsdgt
from .tools import Tool, parse_tools

MAX_STEPS = 5
MAX_TURNS = 6
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
    """One kept conversation. ``messages``: OpenAI chat messages (a system message with the
    tools; per user turn: the user's message, an assistant message with ``tool_calls`` and
    one ``tool`` message per call for each round, the assistant's answer). ``tools``: the
    definitions the model was given."""

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
    - ``tool_execution``: ``sandbox`` (default: run the implementations and endpoints) or
      ``simulated`` (the ``tool_sim`` engine block plays every tool; tools have neither).
    - ``min_turns``, ``max_turns``: user turns per conversation (1..6, default 1).
    - ``tools_per_conversation``: the number of tools each conversation is given, drawn
      from the seed and the call (default: all).

    IBM fms-dgt's ``tool_calling/multi_turn/stateless`` fields (``tools.registry``,
    ``has_nested``, the stage lists) are read into these (``fmsdgt.py``).
    """

    INPUT_DATA_TYPE = ToolRequest
    OUTPUT_DATA_TYPE = ToolExchange
    COMPAT_FIELDS: ClassVar[dict[str, str]] = UNUSED_TOP

    def __init__(
        self,
        *,
        tools: dict[str, Any] | list[dict[str, Any]] | None = None,
        max_steps: int | None = None,
        max_calls: int = 3,
        judge: bool | None = None,
        sandbox: dict[str, Any] | None = None,
        http_timeout: float = 10.0,
        tool_execution: Literal["sandbox", "simulated"] | None = None,
        min_turns: int = 1,
        max_turns: int = 1,
        tools_per_conversation: int | None = None,
        has_nested: bool | None = None,
        initialization_stages: list[dict[str, Any]] | None = None,
        iteration_stages: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        doc = kwargs.get("yaml_doc")
        fmsdgt: FromFmsDgt | None = None
        theirs = isinstance(tools, dict) and bool(FMSDGT_TOOL_KEYS & tools.keys())
        if theirs or initialization_stages is not None or iteration_stages is not None:
            base = doc.path.parent if doc is not None else Path.cwd()
            fmsdgt = read_fmsdgt(
                tools,
                initialization_stages,
                iteration_stages,
                has_nested,
                doc=doc,
                base_dir=base,
                given={"max_steps": max_steps, "judge": judge, "tool_execution": tool_execution},
            )
            if fmsdgt.persona is not None:
                samplers = dict(kwargs.get("samplers") or {})
                samplers["persona"] = fmsdgt.persona
                kwargs["samplers"] = samplers
            max_steps, judge = fmsdgt.max_steps, fmsdgt.judge
            tool_execution = "simulated"
            tools_per_conversation = tools_per_conversation or fmsdgt.tools_per_conversation
        elif has_nested is not None:
            message = "has_nested (IBM fms-dgt) goes with their tools.registry; here write max_steps"
            hint = "max_steps: 2 lets a call use an earlier call's result; 1 does not"
            if doc is None:
                raise ConfigError(message, field="has_nested", hint=hint)
            raise doc.error(message, "has_nested", hint=hint)
        super().__init__(**kwargs)
        max_steps = 2 if max_steps is None else max_steps
        self.tool_execution: Literal["sandbox", "simulated"] = tool_execution or "sandbox"
        for key, value in (("min_turns", min_turns), ("max_turns", max_turns)):
            if not 1 <= value <= MAX_TURNS:
                raise self.config_error(f"{key} must be between 1 and {MAX_TURNS}, got {value}", key)
        if min_turns > max_turns:
            raise self.config_error(
                f"min_turns ({min_turns}) is more than max_turns ({max_turns})", "min_turns"
            )
        self.min_turns, self.max_turns = min_turns, max_turns
        if tools_per_conversation is not None and tools_per_conversation < 1:
            raise self.config_error(
                f"tools_per_conversation must be at least 1, got {tools_per_conversation}",
                "tools_per_conversation",
            )
        self.tools_per_conversation = tools_per_conversation
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
        self.judge, self.http_timeout = True if judge is None else judge, float(http_timeout)
        if fmsdgt is not None:
            self.tools, self.python_path = fmsdgt.tools, [self.base_dir.resolve()]
        else:
            self.tools, self.python_path = self._load_tools(tools)
        self.tools_by_name: dict[str, Tool] = {t.name: t for t in self.tools}

    @property
    def simulated(self) -> bool:
        return self.tool_execution == "simulated"

    def tools_for(self, call_index: int) -> tuple[list[Tool], Tool]:
        """The tools of conversation ``call_index`` (all, or ``tools_per_conversation`` of
        them drawn from the seed and the index, in the task's order) and the one its first
        request must need (each tool in turn)."""
        focus = self.tools[call_index % len(self.tools)]
        k = self.tools_per_conversation
        if k is None or k >= len(self.tools):
            return self.tools, focus
        rng = random.Random(f"{self.runner_config.seed}:tools:{call_index}")
        others = rng.sample([t for t in self.tools if t is not focus], k - 1)
        chosen = {t.name for t in others} | {focus.name}
        return [t for t in self.tools if t.name in chosen], focus

    def turns_for(self, call_index: int) -> int:
        """User turns of conversation ``call_index``, drawn from the seed and the index."""
        rng = random.Random(f"{self.runner_config.seed}:turns:{call_index}")
        return rng.randint(self.min_turns, self.max_turns)

    def _load_tools(
        self, config: dict[str, Any] | list[dict[str, Any]] | None
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
                simulated=self.simulated,
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

        return parse_tools(entries, error_at, search, simulated=self.simulated), search

    def load_seed_examples(self) -> list[DataPoint]:
        """Seeds (example requests) are optional: the tools themselves say what to ask."""
        if self._seed_configs == (None, None):
            self.seed_examples = []
            return []
        return super().load_seed_examples()

    def output_to_example(self, record: DataPoint) -> DataPoint | None:
        """An accepted conversation's first user request, as an example request for later
        calls (``machine_batch_size`` of them are shown with the seeds)."""
        messages = getattr(record, "messages", None) or []
        request = next((m.get("content") for m in messages if m.get("role") == "user"), None)
        if not isinstance(request, str):
            return None
        return self.instantiate_input_example(request=request, is_seed=False)
