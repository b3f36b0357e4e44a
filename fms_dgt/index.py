"""Finding tasks and builders on disk without importing user code.

``index_tasks`` reads every task.yaml under the given paths and maps task names to files;
``index_builders`` maps builder names to their YAML and folder. Importing a builder's Python
happens later, only for builders a selected task uses (``import_builder``)."""

from __future__ import annotations

import importlib
import re
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fms_dgt.config.builder_file import read_builder_name
from fms_dgt.config.task_file import read_task_identity
from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.errors import ConfigError, Problems, RegistryError
from fms_dgt.registry import data_builders

if TYPE_CHECKING:
    from fms_dgt.builders.base import DataBuilder

TASK_FILE_NAMES = ("task.yaml", "task.yml", "qna.yaml")  # qna.yaml: the InstructLab taxonomy name


@dataclass
class TaskEntry:
    name: str
    doc: YamlDoc

    @property
    def builder_name(self) -> str:
        return str(self.doc.data["data_builder"])


@dataclass
class BuilderEntry:
    name: str
    doc: YamlDoc

    @property
    def folder(self) -> Path:
        return self.doc.path.parent


def find_task_files(paths: Sequence[str | Path]) -> list[Path]:
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


def index_tasks(paths: Sequence[str | Path], problems: Problems | None = None) -> dict[str, TaskEntry]:
    """Every task file's identity, by task name. Names are unique, and no task's output folder
    may lie inside another's (``a/b`` and ``a/b/c``): a ``--restart`` of the outer task
    would delete the inner one's results. With ``problems``, a bad file is recorded there and
    the others are still indexed; without, the first bad file raises."""
    own = problems is None
    problems = problems if problems is not None else Problems()
    tasks: dict[str, TaskEntry] = {}
    for path in find_task_files(paths):
        with problems.check():
            doc, identity = read_task_identity(path)
            name = identity.task_name
            if name in tasks:
                raise doc.error(
                    f"duplicate task_name '{name}' (also in {tasks[name].doc.path})",
                    "task_name",
                    hint="task names must be unique across --task-paths",
                )
            for other in tasks:
                outer, inner = (other, name) if name.startswith(other + "/") else (name, other)
                if inner.startswith(outer + "/"):
                    raise doc.error(
                        f"task '{inner}' would write inside the output folder of task '{outer}' "
                        f"(also in {tasks[other].doc.path})",
                        "task_name",
                        hint="rename one so that neither name is a folder of the other",
                    )
            tasks[name] = TaskEntry(name, doc)
    if own:
        problems.raise_if_any()
    return tasks


WITH_DATA = "@data"


def with_data_key(name: str) -> str:
    """The index key of builder name ``name`` used by a task file that has ``data:``."""
    return f"{name}{WITH_DATA}"


def builder_for(name: str, has_data: bool, builders: dict[str, BuilderEntry]) -> str:
    """The index key a task's ``data_builder`` name resolves to: a builder's
    ``data_aliases`` win for a task with ``data:``."""
    return with_data_key(name) if has_data and with_data_key(name) in builders else name


def builder_names(builders: dict[str, BuilderEntry]) -> list[str]:
    """The names a task file may use (for messages and listings)."""
    return [key for key in builders if not key.endswith(WITH_DATA)]


def index_builders(paths: list[Path]) -> dict[str, BuilderEntry]:
    """Builder YAMLs: any ``*.yaml`` in a folder that holds a ``generate.py``."""
    builders: dict[str, BuilderEntry] = {}
    for root in paths:
        if not root.is_dir():
            raise ConfigError(f"builder path '{root}' is not a folder", field="--builder-paths")
        for gen in sorted(root.rglob("generate.py")):
            for yml in sorted(gen.parent.glob("*.yaml")):
                doc, name = read_builder_name(yml)
                entry = BuilderEntry(name, doc)
                aliases = doc.data.get("aliases") or []
                with_data = doc.data.get("data_aliases") or []
                keys = [name, *(a for a in aliases if isinstance(a, str))]
                keys += [with_data_key(a) for a in with_data if isinstance(a, str)]
                for key in keys:
                    if key in builders and builders[key].doc.path != yml:
                        raise doc.error(
                            f"duplicate data builder '{key}' (also in {builders[key].doc.path})",
                            "name" if key == name else "aliases",
                        )
                    builders[key] = entry
    return builders


def import_builder(entry: BuilderEntry) -> type[DataBuilder]:
    """Import the builder's folder as package ``dgt_builders.<folder>`` (so relative imports
    between its generate.py and task.py work) and return the registered class."""
    if entry.name not in data_builders:
        root = sys.modules.get("dgt_builders")
        if root is None:
            root = types.ModuleType("dgt_builders")
            root.__path__ = []
            sys.modules["dgt_builders"] = root
        pkg_name = f"dgt_builders.{_safe(entry.folder.name)}"
        if pkg_name not in sys.modules:
            pkg = types.ModuleType(pkg_name)
            pkg.__path__ = [str(entry.folder)]
            sys.modules[pkg_name] = pkg
        # generate.py first, then every other module of the folder, so blocks (and tasks)
        # defined beside the builder register whether or not generate.py imports them
        modules = [entry.folder / "generate.py"]
        modules += sorted(
            p
            for p in entry.folder.glob("*.py")
            if p.name != "generate.py" and not p.name.startswith(("_", "test_"))
        )
        for module in modules:
            _import_module(f"{pkg_name}.{module.stem}", module)
    try:
        return data_builders.get(entry.name)
    except RegistryError:
        raise entry.doc.error(
            f"{entry.folder / 'generate.py'} does not register a data builder named '{entry.name}'",
            "name",
            hint=f'decorate the class with @register_data_builder("{entry.name}")',
        ) from None


def _import_module(name: str, path: Path) -> None:
    try:
        importlib.import_module(name)
    except ConfigError:
        raise
    except Exception as exc:
        line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
        where = _traceback_location(exc, path)
        raise ConfigError(
            f"importing {path.name} failed: {type(exc).__name__}: {exc}",
            file=where[0] if where else path,
            line=line or (where[1] if where else None),
            hint="fix the builder's Python code (the line shown is where the error was raised)",
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
