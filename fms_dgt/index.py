"""Finding tasks and builders on disk without importing user code.

``index_tasks`` reads every task.yaml under the given paths and maps task names to files;
``index_builders`` maps builder names to their YAML and folder. Importing a builder's Python
happens later, only for builders a selected task uses (``import_builder``)."""

from __future__ import annotations

import difflib
import importlib
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fms_dgt.config.schema import MANDATORY_TASK_FIELDS
from fms_dgt.config.yaml_loader import YamlDoc, load_yaml
from fms_dgt.errors import ConfigError, RegistryError
from fms_dgt.registry import data_builders

TASK_FILE_NAMES = ("task.yaml", "task.yml")
_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass
class TaskEntry:
    name: str
    doc: YamlDoc


@dataclass
class BuilderEntry:
    name: str
    doc: YamlDoc

    @property
    def folder(self) -> Path:
        return self.doc.path.parent


def find_task_files(paths: list[str | Path]) -> list[Path]:
    """Task files under ``paths`` (files taken as given, folders searched recursively)."""
    found: list[Path] = []
    seen: set[Path] = set()  # a file reached twice (a folder and a file in it) counts once
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.name in TASK_FILE_NAMES)
        else:
            raise ConfigError(f"task path '{raw}' does not exist", field="--task-paths")
        for candidate in candidates:
            if candidate.resolve() not in seen:
                seen.add(candidate.resolve())
                found.append(candidate)
    if not found:
        raise ConfigError(f"no task.yaml found under {', '.join(map(str, paths))}", field="--task-paths")
    return found


def index_tasks(paths: list[str | Path]) -> dict[str, TaskEntry]:
    """Load and check the identity of every task file; duplicate names are an error."""
    tasks: dict[str, TaskEntry] = {}
    for path in find_task_files(paths):
        doc = load_yaml(path)
        if not isinstance(doc.data, dict):
            got = "an empty file" if doc.data is None else type(doc.data).__name__
            raise ConfigError(
                f"a task file must be a mapping of keys, got {got}",
                file=path,
                line=1,
                hint="start with 'task_name: ...'",
            )
        for key in MANDATORY_TASK_FIELDS:
            if key not in doc.data:
                others = [k for k in doc.data if isinstance(k, str)]
                close = difflib.get_close_matches(key, others, n=1, cutoff=0.6)
                # a misspelled key is the line to fix; otherwise the file as a whole
                raise doc.error(
                    f"missing mandatory key '{key}'",
                    *close[:1],
                    hint=f"rename '{close[0]}' to '{key}'" if close else f"add '{key}: ...'",
                )
            value = doc.data[key]
            if not isinstance(value, str) or not value.strip():
                raise doc.error(f"'{key}' must be a non-empty string (got {value!r})", key)
        name = doc.data["task_name"]
        if not _TASK_NAME.match(name) or ".." in name:
            raise doc.error(
                f"task_name {name!r} is not a safe folder name",
                "task_name",
                hint="start with a letter or digit, then letters, digits, '_', '-' or '.' (it names the output folder)",
            )
        if name in tasks:
            raise doc.error(
                f"duplicate task_name '{name}' (also in {tasks[name].doc.path})",
                "task_name",
                hint="task names must be unique across --task-paths",
            )
        tasks[name] = TaskEntry(name, doc)
    return tasks


def index_builders(paths: list[Path]) -> dict[str, BuilderEntry]:
    """Builder YAMLs: any ``*.yaml`` in a folder that holds a ``generate.py``."""
    builders: dict[str, BuilderEntry] = {}
    for root in paths:
        if not root.is_dir():
            raise ConfigError(f"builder path '{root}' is not a folder", field="--builder-paths")
        for gen in sorted(root.rglob("generate.py")):
            for yml in sorted(gen.parent.glob("*.yaml")):
                doc = load_yaml(yml)
                if not isinstance(doc.data, dict):
                    raise ConfigError("a builder YAML must be a mapping", file=yml, line=1)
                name = doc.data.get("name", yml.stem)
                if not isinstance(name, str):
                    raise doc.error("'name' must be a string", "name")
                if name in builders and builders[name].doc.path != yml:
                    raise doc.error(
                        f"duplicate data builder '{name}' (also in {builders[name].doc.path})", "name"
                    )
                builders[name] = BuilderEntry(name, doc)
    return builders


def import_builder(entry: BuilderEntry) -> type:
    """Import the builder's folder as package ``dgt_builders.<folder>`` (so relative imports
    between its generate.py and task.py work) and return the registered class."""
    if entry.name not in data_builders:
        root = sys.modules.get("dgt_builders")
        if root is None:
            root = types.ModuleType("dgt_builders")
            root.__path__ = []  # type: ignore[attr-defined]
            sys.modules["dgt_builders"] = root
        pkg_name = f"dgt_builders.{_safe(entry.folder.name)}"
        if pkg_name not in sys.modules:
            pkg = types.ModuleType(pkg_name)
            pkg.__path__ = [str(entry.folder)]  # type: ignore[attr-defined]
            sys.modules[pkg_name] = pkg
        generate = entry.folder / "generate.py"
        try:
            importlib.import_module(f"{pkg_name}.generate")
        except ConfigError:
            raise
        except Exception as exc:
            line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
            where = _traceback_location(exc, generate)
            raise ConfigError(
                f"importing {generate.name} failed: {type(exc).__name__}: {exc}",
                file=where[0] if where else generate,
                line=line or (where[1] if where else None),
                hint="fix the builder's Python code (the line shown is where the error was raised)",
            ) from None
    try:
        return data_builders.get(entry.name)
    except RegistryError:
        raise entry.doc.error(
            f"{entry.folder / 'generate.py'} does not register a data builder named '{entry.name}'",
            "name",
            hint=f'decorate the class with @register_data_builder("{entry.name}")',
        ) from None


def _traceback_location(exc: BaseException, prefer: Path) -> tuple[Path, int] | None:
    """Where in the builder's own files ``exc`` was raised: the deepest traceback frame in
    ``prefer``'s folder (the user's code, not importlib's or a library's)."""
    found: tuple[Path, int] | None = None
    tb = exc.__traceback__
    folder = prefer.resolve().parent
    while tb is not None:
        path = Path(tb.tb_frame.f_code.co_filename)
        if path.resolve().parent == folder:
            found = (path, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _safe(name: str) -> str:
    return re.sub(r"\W", "_", name)


def default_builder_paths() -> list[Path]:
    """The built-in builders (next to the package in a checkout) and ./data_builders."""
    out = []
    here = Path(__file__).resolve().parent.parent / "data_builders"
    if here.is_dir():
        out.append(here)
    cwd = Path.cwd() / "data_builders"
    if cwd.is_dir() and cwd.resolve() != here:
        out.append(cwd)
    return out


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (mappings merge, other values replace)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
