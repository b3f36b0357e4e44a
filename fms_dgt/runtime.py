"""The runtime: load and check every task, then run them all on one event loop.

Loading (``prepare``) touches no model; running (``run``) shares engines across tasks,
writes the task card and task results, and turns every ending (complete, stalled, failed,
interrupted) into a recorded status."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fms_dgt.blocks.chain import FilterChain
from fms_dgt.budget import BudgetExhausted
from fms_dgt.builders.finishing import Finisher
from fms_dgt.builders.run import RunParts, TaskRun, run_for, run_kinds
from fms_dgt.config.builder_file import check_builder
from fms_dgt.config.compat import unsupported_builder
from fms_dgt.config.env import redact, redacted_config
from fms_dgt.config.overrides import Overrides
from fms_dgt.config.task_file import check_task
from fms_dgt.config.yaml_loader import YamlDoc
from fms_dgt.datastores.base import read_json, write_json_atomic
from fms_dgt.errors import (
    ConfigError,
    DatastoreError,
    DGTError,
    DiskFullError,
    Problems,
    StalledError,
    TaskLockedError,
)
from fms_dgt.export.splits import assignment_current
from fms_dgt.factory import EnginePool, PreparedTask, build_builder, build_task
from fms_dgt.index import (
    BuilderEntry,
    TaskEntry,
    builder_for,
    builder_names,
    default_builder_paths,
    import_builder,
    index_builders,
    index_tasks,
)
from fms_dgt.ledger import Ledger
from fms_dgt.progress import Progress
from fms_dgt.registry import did_you_mean
from fms_dgt.state import TaskLock, TaskState, load_state
from fms_dgt.task import Task

log = logging.getLogger("fms_dgt.run")


@dataclass
class Outcome:
    task_name: str
    status: str
    message: str = ""
    results: dict[str, Any] = field(default_factory=dict)


def output_dir_from(cli_value: str | None) -> Path:
    return Path(cli_value or os.environ.get("DGT_OUTPUT_DIR") or "output")


class Runtime:
    def __init__(
        self,
        task_paths: list[str],
        builder_paths: list[str] | None = None,
        output_dir: Path | None = None,
        overrides: Overrides | None = None,
        restart: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.task_paths = task_paths
        self.builder_paths = [Path(p) for p in builder_paths or []] + default_builder_paths()
        self.output_dir = output_dir or output_dir_from(None)
        self.overrides = overrides or Overrides()
        self.restart = restart
        self.progress = progress or Progress()
        self.pool = EnginePool()
        self.prepared: list[PreparedTask] = []

    # ---- loading ---------------------------------------------------------------------
    def prepare(self) -> list[PreparedTask]:
        """Load and check every task; no model is called. Every problem of every task is
        collected and raised together (a ConfigErrors) after the tasks that loaded are in
        ``self.prepared``, so ``--validate`` can say which loaded and what is wrong with
        the rest in one run."""
        check_output_dir(self.output_dir)
        problems = Problems()
        tasks = index_tasks(self.task_paths, problems)
        builders = index_builders(self.builder_paths)
        for name in self.overrides.tasks:
            if name != "*" and name not in tasks:
                problems.add(
                    self.overrides.error(
                        f"override for unknown task '{name}'",
                        "tasks",
                        name,
                        hint=did_you_mean(name, list(tasks)) or f"tasks found: {', '.join(sorted(tasks))}",
                    )
                )
        for name in self.overrides.builders:
            if name not in builders:
                problems.add(
                    self.overrides.error(
                        f"override for unknown data builder '{name}'",
                        "builders",
                        name,
                        hint=did_you_mean(name, builder_names(builders))
                        or f"builders found: {', '.join(sorted(builder_names(builders)))}",
                    )
                )
        for entry in tasks.values():
            with problems.check():
                self.prepared.append(self._prepare_task(entry, builders))
        problems.raise_if_any()
        return self.prepared

    def _prepare_task(self, entry: TaskEntry, builders: dict[str, BuilderEntry]) -> PreparedTask:
        has_data = isinstance(entry.doc.data, dict) and "data" in entry.doc.data
        bname = builder_for(entry.builder_name, has_data, builders)
        if bname not in builders and unsupported_builder(bname):
            raise entry.doc.error(str(unsupported_builder(bname)), "data_builder")
        if bname not in builders:
            raise entry.doc.error(
                f"unknown data builder '{bname}'",
                "data_builder",
                hint=did_you_mean(bname, builder_names(builders))
                or f"known: {', '.join(sorted(builder_names(builders))) or 'none'}",
            )
        bentry = builders[bname]
        builder_cls = import_builder(bentry)
        if builder_cls.KIND not in run_kinds():
            raise bentry.doc.error(
                f"data builder {builder_cls.__name__} declares no kind of run ({builder_cls.KIND!r})",
                "name",
                hint="subclass GenerationDataBuilder or TransformationDataBuilder",
            )
        check_task_folder(self.output_dir, entry.name, entry.doc)
        problems = Problems()
        task_config = builder_config = task = None
        with problems.check():
            task_config = check_task(entry.doc, builder_cls.TASK_TYPE, self.overrides)
        with problems.check():
            builder_config = check_builder(bentry.name, bentry.doc, self.overrides)
        problems.raise_if_any()
        assert task_config is not None and builder_config is not None
        task = build_task(task_config, str(self.output_dir))
        return build_builder(task, task_config, builder_config, builder_cls, self.overrides, self.pool)

    # ---- running ---------------------------------------------------------------------
    async def run(self) -> list[Outcome]:
        workers = max(pt.task.runner_config.max_concurrent_calls for pt in self.prepared) + 4
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dgt-builder")
        try:
            return list(await asyncio.gather(*(self._run_task(pt, executor) for pt in self.prepared)))
        finally:
            for engine in self.pool.all():
                try:
                    await asyncio.wait_for(engine.aclose(), 60)
                except Exception as exc:  # closing must not hide the run's own outcome
                    log.warning("closing engine %s failed: %s", engine.name, exc)
            for pt in self.prepared:
                pt.builder.close()
            executor.shutdown(wait=False, cancel_futures=True)
            self.progress.close()

    def _parts(self, pt: PreparedTask, state: TaskState, executor: ThreadPoolExecutor) -> RunParts:
        task = pt.task
        ledger = Ledger(task.task_name, task.stores, state, state_dir=task.task_dir)
        finisher = Finisher(task, ledger, state, pt.postprocessors, pt.formatter)
        chain = FilterChain(pt.filters)
        return RunParts(task, pt.builder, ledger, chain, state, finisher, self.progress, executor)

    async def _run_task(self, pt: PreparedTask, executor: ThreadPoolExecutor) -> Outcome:
        task = pt.task
        lock = TaskLock(task.task_dir, task.task_name)
        try:
            lock.acquire()
        except TaskLockedError as exc:
            log.error("%s", exc)
            return Outcome(task.task_name, "locked", str(exc))
        except OSError as exc:  # the lock file itself cannot be written (a full disk, say)
            return _store_failure(task.task_name, exc)
        try:
            return await self._run_locked(pt, executor)
        except DatastoreError as exc:  # writing the card or results (a full disk): the run ends here
            return _store_failure(task.task_name, exc)
        finally:
            _best_effort(
                task.task_name, task.stores.close, quiet=True
            )  # flushed already; a full disk is told
            lock.release()

    async def _run_locked(self, pt: PreparedTask, executor: ThreadPoolExecutor) -> Outcome:
        task = pt.task
        started = time.time()
        if self.restart:
            _clear_task_dir(task.task_dir)
            task.stores.clear(len(pt.postprocessors))
        state = load_state(task.task_dir)
        parts = self._parts(pt, state, executor)
        runner = run_for(parts)
        if state.status == "complete" and not self._extends(pt, runner, state):
            log.info(
                "%s: already complete (%d records in %s); use --restart to start over",
                task.task_name,
                state.final_count,
                task.task_dir,
            )
            try:
                await self._catch_up_complete(pt, state, executor)
            except Exception as exc:  # e.g. a formatter that fails on a record
                log.error("%s: formatting the complete task failed: %s", task.task_name, exc)
                return Outcome(task.task_name, "failed", f"formatting failed: {exc}")
            return Outcome(
                task.task_name,
                "complete",
                "already complete",
                read_json(task.task_dir / "task_results.json") or {},
            )
        self._write_task_card(pt)
        ledger = parts.ledger
        ledger.carry_over(read_json(task.task_dir / "task_results.json") or {})
        rc = task.runner_config
        ledger.budget.max_cost_usd, ledger.budget.max_tokens_total = rc.max_cost_usd, rc.max_tokens_total
        ledger.budget.max_seconds, ledger.budget.started = rc.max_seconds, time.monotonic()
        ledger.count_stored()
        self._write_results(pt, runner, "running", started)
        runner.on_checkpoint = lambda: self._write_results(pt, runner, "running", started)
        status, message = "failed", ""
        disk_full = False
        try:
            status = await runner.run()
        except StalledError as exc:
            status, message = "stalled", str(exc)
            log.error("%s", exc)
        except BudgetExhausted as exc:
            status, message = exc.status, f"{task.task_name}: {exc}"
            log.warning("%s", message)
        except asyncio.CancelledError:
            phase = parts.finisher.active or (
                "generating"
                if ledger.engine_ok or ledger.last_engine_error
                else "waiting for the first model answer (engines starting)"
            )
            status, message = "interrupted", f"stopped by a signal while {phase}"
            raise
        except DGTError as exc:
            status, message, disk_full = "failed", str(exc), isinstance(exc, DiskFullError)
            log.error("%s: %s", task.task_name, exc)
        except Exception as exc:  # a bug in user code or ours: keep other tasks running, say where
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("%s: unexpected error", task.task_name)
        finally:
            # each step on its own: after a full disk, the ones that can still write do (and
            # the full disk, already reported, is not reported once per file)
            _best_effort(task.task_name, ledger.sync, quiet=disk_full)
            if status != "complete":
                state.status = status
                _best_effort(task.task_name, lambda: state.save(task.task_dir), quiet=disk_full)
            results = self._results(pt, runner, status, started, message)
            _best_effort(task.task_name, lambda: self._store_results(task, results), quiet=disk_full)
        return Outcome(task.task_name, status, message, results)

    def _extends(self, pt: PreparedTask, runner: TaskRun, state: TaskState) -> bool:
        """A complete task continues when it was asked for more since (a higher target, new
        input rows); only what is missing is made."""
        if not runner.extends():
            return False
        state.status = "generating"
        return True

    async def _catch_up_complete(
        self, pt: PreparedTask, state: TaskState, executor: ThreadPoolExecutor
    ) -> None:
        """A complete task is not regenerated, but the user may have edited it since: say so
        if its config changed, and write ``formatted_data`` if it is asked for now and was
        not before, and the split files if the split asked for changed (formatting needs no
        model, so there is no reason to demand --restart)."""
        task = pt.task
        card = read_json(task.task_dir / "task_card.json") or {}
        now = json.loads(
            json.dumps(redacted_config(pt.task_config.doc.data if pt.task_config else {}), default=str)
        )  # as stored
        stored = card.get("task_config")
        # cards written before the card held the task.yaml (it held the builder's) say nothing
        if isinstance(stored, dict) and "task_name" in stored and stored != now:
            log.warning(
                "%s: the task config changed since it completed; its outputs are from the earlier "
                "config (use --restart to regenerate with the new one)",
                task.task_name,
            )
        wants = pt.formatter is not None and task.runner_config.save_formatted_output
        split = task.runner_config.split
        ratios = {k: v for k, v in split.ratios().items() if v > 0} if split is not None else None
        split_changed = not assignment_current(task.task_dir, ratios, split.seed if split else 0)
        if (wants and not task.stores.formatted.exists()) or split_changed:
            finisher = self._parts(pt, state, executor).finisher
            await finisher.run(executor, finisher.format)

    def _write_task_card(self, pt: PreparedTask) -> None:
        card = {
            "task_name": pt.task.task_name,
            "task_description": pt.task.task_description,
            "created_by": pt.task.created_by,
            "data_builder": pt.task.data_builder,
            "task_file": str(pt.task.yaml_doc.path) if pt.task.yaml_doc else None,
            "task_config": redacted_config(pt.task_config.doc.data if pt.task_config else {}),
            "builder_config": redacted_config(pt.builder_config.as_written()),
            "runner_config": pt.task.runner_config.model_dump(),
            "engines": [e.describe() for e in pt.builder.engines],
            "written_at": _now(),
        }
        # expanded ${VAR} values can reach any field (a description, an engine's base_url)
        write_json_atomic(pt.task.task_dir / "task_card.json", redacted_config(card))

    def _write_results(
        self, pt: PreparedTask, runner: TaskRun, status: str, started: float, message: str = ""
    ) -> dict[str, Any]:
        results = self._results(pt, runner, status, started, message)
        self._store_results(pt.task, results)
        return results

    def _store_results(self, task: Task, results: dict[str, Any]) -> None:
        write_json_atomic(task.task_dir / "task_results.json", results)

    def _results(
        self, pt: PreparedTask, runner: TaskRun, status: str, started: float, message: str = ""
    ) -> dict[str, Any]:
        """task_results.json: status, times, counts, tokens per engine."""
        task = pt.task
        previous = read_json(task.task_dir / "task_results.json") or {}
        ledger, state = runner.ledger, runner.state
        results = {
            "task_name": task.task_name,
            "status": status,
            "started_at": _now(started),  # this run's start (every write of the run says the same)
            "ended_at": None if status == "running" else _now(),
            "pid": os.getpid(),
            "elapsed_seconds": round(time.time() - started, 3),
            "counts": ledger.counts(),
            "target": runner.target,
            "epoch": state.epoch,
            **ledger.summary(),
        }
        if message:
            results["message"] = redact(message)
        if previous.get("runs"):
            results["runs"] = previous["runs"]
        return results


def check_output_dir(output_dir: Path) -> None:
    """The output folder must be a folder we can write in (or creatable in one), checked
    before any model call and without creating anything (``--validate`` writes nothing)."""
    where = "--output-dir (or $DGT_OUTPUT_DIR)"
    path = output_dir.absolute()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        what = "is a file" if existing == path else f"is inside a file ('{existing}' is a file)"
        raise ConfigError(f"output dir '{output_dir}' {what}", field=where, hint="name a folder")
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"output dir '{output_dir}' is not writable ({existing} cannot be written to)",
            field=where,
            hint="choose a folder you can write in",
        )


def _store_failure(task_name: str, exc: BaseException) -> Outcome:
    message = str(exc) if isinstance(exc, DatastoreError) else f"cannot write in the task folder: {exc}"
    log.error("%s: %s", task_name, message)
    return Outcome(task_name, "failed", message)


def _best_effort(task_name: str, step: Callable[[], Any], quiet: bool = False) -> Any:
    """Run a bookkeeping step that must not hide the run's own outcome if it fails."""
    try:
        return step()
    except (DatastoreError, OSError) as exc:
        if not (quiet and isinstance(exc, DiskFullError)):
            log.warning("%s: %s", task_name, exc)
        return None


TASK_FOLDER_MARKERS = ("task_results.json", "task_card.json", "state.json")


def _is_task_folder(folder: Path) -> bool:
    return any((folder / marker).is_file() for marker in TASK_FOLDER_MARKERS)


def check_task_folder(output_dir: Path, task_name: str, doc: YamlDoc) -> None:
    """A task's folder must not lie inside another task's folder on disk, nor hold one
    (``a/b`` run earlier, ``a/b/c`` now): a ``--restart`` of the outer task would delete the
    inner one's results, and the report would mix them."""
    task_dir = output_dir / task_name
    parts = task_name.split("/")
    for i in range(1, len(parts)):
        outer = output_dir.joinpath(*parts[:i])
        if _is_task_folder(outer):
            raise doc.error(
                f"task '{task_name}' would write inside the output folder of task '{'/'.join(parts[:i])}' "
                f"({outer})",
                "task_name",
                hint="rename the task, or use another --output-dir",
            )
    if task_dir.is_dir() and not _is_task_folder(task_dir):
        inner = next((p.parent for m in TASK_FOLDER_MARKERS for p in task_dir.rglob(m)), None)
        if inner is not None:
            raise doc.error(
                f"the output folder of task '{task_name}' ({task_dir}) holds the output of another "
                f"task ({inner})",
                "task_name",
                hint="rename the task, or use another --output-dir",
            )


def _clear_task_dir(task_dir: Path) -> None:
    if not task_dir.exists():
        return
    for child in task_dir.iterdir():
        if child.name == ".lock":
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _now(timestamp: float | None = None) -> str:
    when = (
        datetime.now(timezone.utc) if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)
    )
    return when.isoformat(timespec="seconds")
