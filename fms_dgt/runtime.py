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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fms_dgt.builders.finishing import Finisher
from fms_dgt.builders.generation import GenerationRun
from fms_dgt.builders.transformation import TransformationRun
from fms_dgt.config.yaml_loader import redact
from fms_dgt.datastores.base import read_json, write_json_atomic
from fms_dgt.errors import DGTError, StalledError, TaskLockedError
from fms_dgt.factory import EnginePool, Overrides, PreparedTask, build_builder, build_task
from fms_dgt.index import default_builder_paths, import_builder, index_builders, index_tasks
from fms_dgt.ledger import TaskLedger
from fms_dgt.progress import Progress
from fms_dgt.registry import did_you_mean
from fms_dgt.state import TaskLock, TaskState
from fms_dgt.task import GenerationTask

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
        """Load and check everything; raises ConfigError on the first problem. No model calls."""
        check_output_dir(self.output_dir)
        tasks = index_tasks(self.task_paths)
        builders = index_builders(self.builder_paths)
        for name in self.overrides.tasks:
            if name != "*" and name not in tasks:
                raise self.overrides.error(
                    f"override for unknown task '{name}'",
                    "tasks",
                    name,
                    hint=did_you_mean(name, list(tasks)) or f"tasks found: {', '.join(sorted(tasks))}",
                )
        for name in self.overrides.builders:
            if name not in builders:
                raise self.overrides.error(
                    f"override for unknown data builder '{name}'",
                    "builders",
                    name,
                    hint=did_you_mean(name, list(builders))
                    or f"builders found: {', '.join(sorted(builders))}",
                )
        for entry in tasks.values():
            bname = entry.doc.data["data_builder"]
            if bname not in builders:
                raise entry.doc.error(
                    f"unknown data builder '{bname}'",
                    "data_builder",
                    hint=did_you_mean(bname, list(builders))
                    or f"known: {', '.join(sorted(builders)) or 'none'}",
                )
            bentry = builders[bname]
            builder_cls = import_builder(bentry)
            task = build_task(entry, builder_cls, self.overrides, str(self.output_dir))
            self.prepared.append(build_builder(task, bentry, builder_cls, self.overrides, self.pool))
        return self.prepared

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

    async def _run_task(self, pt: PreparedTask, executor: ThreadPoolExecutor) -> Outcome:
        task = pt.task
        lock = TaskLock(task.task_dir, task.task_name)
        try:
            lock.acquire()
        except TaskLockedError as exc:
            log.error("%s", exc)
            return Outcome(task.task_name, "locked", str(exc))
        started = time.time()
        try:
            if self.restart:
                _clear_task_dir(task.task_dir)
                task.clear_datastores(len(pt.postprocessors))
            state = TaskState.load(task.task_dir)
            if state.status == "complete":
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
            ledger = TaskLedger(task, pt.filters)
            ledger.carry_over(read_json(task.task_dir / "task_results.json") or {})
            finisher = Finisher(task, ledger, state, pt.postprocessors, pt.formatter)
            kind = GenerationRun if isinstance(task, GenerationTask) else TransformationRun
            runner = kind(task, pt.builder, ledger, state, finisher, self.progress, executor)  # type: ignore[arg-type]
            self._write_results(pt, ledger, state, "running", started)
            if isinstance(runner, GenerationRun):
                runner.on_checkpoint = lambda: self._write_results(pt, ledger, state, "running", started)
            status, message = "failed", ""
            try:
                status = await runner.run()
            except StalledError as exc:
                status, message = "stalled", str(exc)
                log.error("%s", exc)
            except asyncio.CancelledError:
                phase = finisher.active or (
                    "generating"
                    if ledger.engine_ok or ledger.last_engine_error
                    else "waiting for the first model answer (engines starting)"
                )
                status, message = "interrupted", f"stopped by a signal while {phase}"
                raise
            except DGTError as exc:
                status, message = "failed", str(exc)
                log.error("%s: %s", task.task_name, exc)
            except Exception as exc:  # a bug in user code or ours: keep other tasks running, say where
                status, message = "failed", f"{type(exc).__name__}: {exc}"
                log.exception("%s: unexpected error", task.task_name)
            finally:
                ledger.sync()
                if status != "complete":
                    state.status = status
                    state.save(task.task_dir)
                results = self._write_results(pt, ledger, state, status, started, message)
            return Outcome(task.task_name, status, message, results)
        finally:
            task.close_datastores()
            lock.release()

    async def _catch_up_complete(
        self, pt: PreparedTask, state: TaskState, executor: ThreadPoolExecutor
    ) -> None:
        """A complete task is not regenerated, but the user may have edited it since: say so
        if its config changed, and write ``formatted_data`` if it is asked for now and was
        not before (formatting needs no model, so there is no reason to demand --restart)."""
        task = pt.task
        card = read_json(task.task_dir / "task_card.json") or {}
        now = json.loads(json.dumps(_redacted(pt.raw_config), default=str))  # as the card stored it
        stored = card.get("task_config")
        # cards written before the card held the task.yaml (it held the builder's) say nothing
        if isinstance(stored, dict) and "task_name" in stored and stored != now:
            log.warning(
                "%s: the task config changed since it completed; its outputs are from the earlier "
                "config (use --restart to regenerate with the new one)",
                task.task_name,
            )
        wants = pt.formatter is not None and task.runner_config.save_formatted_output
        if wants and not task.datastore("formatted_data").exists():
            ledger = TaskLedger(task, pt.filters)
            finisher = Finisher(task, ledger, state, pt.postprocessors, pt.formatter)
            await finisher.run(executor, finisher.format)

    def _write_task_card(self, pt: PreparedTask) -> None:
        card = {
            "task_name": pt.task.task_name,
            "task_description": pt.task.task_description,
            "created_by": pt.task.created_by,
            "data_builder": pt.task.data_builder,
            "task_file": str(pt.task.yaml_doc.path) if pt.task.yaml_doc else None,
            "task_config": _redacted(pt.raw_config),
            "builder_config": _redacted(pt.builder_config),
            "runner_config": pt.task.runner_config.model_dump(),
            "engines": [e.describe() for e in pt.builder.engines],
            "written_at": _now(),
        }
        # expanded ${VAR} values can reach any field (a description, an engine's base_url)
        write_json_atomic(pt.task.task_dir / "task_card.json", _redacted(card))

    def _write_results(
        self,
        pt: PreparedTask,
        ledger: TaskLedger,
        state: TaskState,
        status: str,
        started: float,
        message: str = "",
    ) -> dict[str, Any]:
        task = pt.task
        path = task.task_dir / "task_results.json"
        previous = read_json(path) or {}
        results = {
            "task_name": task.task_name,
            "status": status,
            "started_at": _now(started),  # this run's start (every write of the run says the same)
            "ended_at": None if status == "running" else _now(),
            "pid": os.getpid(),
            "elapsed_seconds": round(time.time() - started, 3),
            "counts": {
                "accepted": ledger.accepted,
                "rejected": ledger.rejected.count() if status != "running" else 0,
                "failed": ledger.failed.count() if status != "running" else 0,
                "final": state.final_count,
                "calls": ledger.calls,
            },
            "target": task.runner_config.num_outputs_to_generate
            if isinstance(task, GenerationTask)
            else None,
            "epoch": state.epoch,
            **ledger.summary(),
        }
        if message:
            results["message"] = redact(message)
        if previous.get("runs"):
            results["runs"] = previous["runs"]
        write_json_atomic(path, results)
        return results


def check_output_dir(output_dir: Path) -> None:
    """The output folder must be a folder we can write in (or creatable in one), checked
    before any model call and without creating anything (``--validate`` writes nothing)."""
    from fms_dgt.errors import ConfigError

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


def _redacted(value: Any) -> Any:
    """Config as written (``${VAR}`` kept unexpanded), minus any literal secret value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: ("***" if _secret_key(k) and isinstance(v, str) and "${" not in v else _redacted(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _secret_key(key: Any) -> bool:
    k = str(key).lower()
    return k in ("api_key", "token", "password", "secret") or k.endswith("_api_key")


def _now(timestamp: float | None = None) -> str:
    when = (
        datetime.now(timezone.utc) if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)
    )
    return when.isoformat(timespec="seconds")
