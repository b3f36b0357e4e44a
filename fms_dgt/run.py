"""Command line: ``python -m fms_dgt.run --task-paths tasks/...`` (also ``dgt``).

Exit status: 0 every task complete, 1 a task stalled or failed, 2 bad input (one message
naming file, line and field; no traceback), 130 interrupted (state kept for resuming).
Heavy modules are imported only after the arguments are parsed, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130

ENGINE_FLAGS = {
    "engine": "type",
    "model": "model",
    "base_url": "base_url",
    "max_concurrency": "max_concurrency",
    "api_key_env": "api_key_env",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fms_dgt.run",
        description="Generate synthetic data from task.yaml files.",
        epilog="Docs: docs/cli.md. Same command again continues an interrupted run; --restart starts over.",
    )
    p.add_argument(
        "--task-paths",
        nargs="+",
        metavar="PATH",
        help="task.yaml files, or folders searched recursively (default: ./tasks)",
    )
    p.add_argument(
        "--builder-paths",
        nargs="+",
        metavar="DIR",
        default=[],
        help="extra folders holding data builders (built-ins and ./data_builders are always searched)",
    )
    p.add_argument(
        "--config-path",
        metavar="FILE",
        help="override file with 'engines', 'builders', 'tasks' and 'runner_config' sections",
    )
    p.add_argument(
        "--output-dir", metavar="DIR", help="where results go (default: $DGT_OUTPUT_DIR or ./output)"
    )
    p.add_argument("--num-outputs-to-generate", type=int, metavar="N", help="records to generate per task")
    p.add_argument("--seed-batch-size", type=int, metavar="N", help="seed examples per builder call")
    p.add_argument(
        "--machine-batch-size", type=int, metavar="N", help="synthetic examples mixed into each call"
    )
    p.add_argument("--max-concurrent-calls", type=int, metavar="N", help="builder calls in flight per task")
    p.add_argument(
        "--max-cost-usd", type=float, metavar="USD", help="stop a task when it has spent this much (all runs)"
    )
    p.add_argument(
        "--max-tokens-total", type=int, metavar="N", help="stop a task when it has used this many tokens"
    )
    p.add_argument("--max-seconds", type=float, metavar="S", help="stop a task when it has run this long")
    p.add_argument("--seed", type=int, help="random seed for in-context example sampling")
    p.add_argument("--restart", action="store_true", help="discard previous outputs of the selected tasks")
    p.add_argument(
        "--preview",
        type=int,
        metavar="N",
        help="make N records per task through the whole pipeline, print them with every rejection "
        "and an estimate for the full task, and write nothing to the output folder",
    )
    p.add_argument(
        "--validate", action="store_true", help="load and check everything, call no model, then exit"
    )
    p.add_argument(
        "--list",
        action="store_true",
        help="list tasks, builders, engines, blocks, formatters and hardware profiles found",
    )
    p.add_argument(
        "--list-profiles",
        action="store_true",
        help="list the hardware profiles with their memory arithmetic, and this machine's class",
    )
    g = p.add_argument_group("engine override (applies to every engine of every task)")
    g.add_argument("--engine", metavar="TYPE", help="engine type: vllm, vllm-server, openai, ...")
    g.add_argument("--model", metavar="NAME", help="model name or path")
    g.add_argument(
        "--base-url",
        metavar="URL",
        nargs="+",
        help="endpoint of an OpenAI-compatible server; several URLs serving the same model share the load",
    )
    g.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    g.add_argument("--max-concurrency", type=int, metavar="N", help="requests in flight per engine")
    g.add_argument(
        "--profile",
        metavar="NAME",
        help="hardware preset (cpu, gpu-under-8gb, gpu-8-24gb, gpu-24-80gb, multi-gpu, or auto for "
        "this machine's class): the model and vLLM settings that fit, as the engine override",
    )
    p.add_argument("--no-progress", action="store_true", help="plain log lines instead of progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def cli() -> int:
    """The ``dgt`` console script: ``main`` with a quiet exit when stdout's reader goes away.
    ``dgt export ...`` is ``python -m fms_dgt.export ...``, ``dgt view ...`` is
    ``python -m fms_dgt.view ...``."""
    import importlib

    from fms_dgt.console import run_cli

    module = SUBCOMMANDS.get(sys.argv[1]) if len(sys.argv) > 1 else None
    if module is not None:
        sub_main = importlib.import_module(module).main
        return run_cli(lambda: sub_main(sys.argv[2:]))
    return run_cli(main)


# ``dgt NAME ...`` runs that module's ``main`` on the remaining arguments
SUBCOMMANDS = {"export": "fms_dgt.export.__main__", "view": "fms_dgt.view.__main__"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fms_dgt.run_log import setup_console

    setup_console(args.verbose)
    from fms_dgt.errors import ConfigError, DGTError

    previous = _stop_on_sigterm()
    try:
        return _main(args)
    except KeyboardInterrupt:
        # a signal outside the run's own handlers (loading tasks, printing the summary):
        # every accepted record is on disk already, so the same command carries on
        print("interrupted; the same command continues from what is on disk", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        from fms_dgt.config.env import redact

        print(f"error: {redact(exc.render())}", file=sys.stderr)
        return EXIT_CONFIG
    except DGTError as exc:
        from fms_dgt.config.env import redact

        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if previous is not None:  # main() may be called in-process (tests, notebooks)
            signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace) -> int:
    import fms_dgt.blocks  # noqa: F401 - registers built-ins
    import fms_dgt.datastores  # noqa: F401
    import fms_dgt.engines  # noqa: F401
    import fms_dgt.formatters  # noqa: F401
    from fms_dgt.progress import Progress
    from fms_dgt.runtime import Runtime, output_dir_from

    task_paths = args.task_paths or (["tasks"] if Path("tasks").is_dir() else None)
    if args.list_profiles:
        from fms_dgt.engines.profiles import render

        print(render())
        return EXIT_OK
    if args.list:
        from fms_dgt.listing import print_listing

        print_listing(task_paths, args.builder_paths)
        return EXIT_OK
    if not task_paths:
        from fms_dgt.errors import ConfigError

        raise ConfigError(
            "no tasks given and ./tasks does not exist",
            field="--task-paths",
            hint="pass --task-paths path/to/task.yaml",
        )
    overrides = _overrides(args)
    runtime = Runtime(
        task_paths,
        args.builder_paths,
        output_dir_from(args.output_dir),
        overrides,
        restart=args.restart,
        progress=Progress(use_bars=False if args.no_progress else None),
    )
    if args.validate:
        return _validate(runtime)
    runtime.prepare()
    if args.preview is not None:
        return _preview(runtime, args, task_paths, overrides)
    from fms_dgt.run_log import quiet_libraries

    with quiet_libraries(runtime.output_dir, args.verbose) as log_path:
        outcomes = _run(runtime)
    if outcomes is None:
        from fms_dgt.summary import print_interrupted

        print_interrupted(runtime)
        _leave_stuck_builder_calls()
        return EXIT_INTERRUPTED
    from fms_dgt.summary import print_summary

    print_summary(outcomes, runtime.output_dir)
    if log_path is not None:
        print(f"log: {log_path} (details and the model libraries' own output; -v shows them here)")
    return EXIT_OK if all(o.status == "complete" for o in outcomes) else EXIT_FAILED


def _preview(runtime: Any, args: argparse.Namespace, task_paths: list[str], overrides: Any) -> int:
    """``--preview N``: N records per task in a temporary folder, printed with their
    rejections and an estimate for the whole task (fms_dgt/preview.py)."""
    import copy

    from fms_dgt.preview import preview_overrides, run_preview, targets
    from fms_dgt.progress import Progress
    from fms_dgt.run_log import quiet_libraries
    from fms_dgt.runtime import Runtime

    if args.preview < 1:
        from fms_dgt.errors import ConfigError

        raise ConfigError(
            f"--preview must be at least 1, got {args.preview}",
            field="--preview",
            hint="the number of records to make",
        )
    full = targets(runtime)
    small = copy.copy(overrides)
    small.runner = preview_overrides(overrides.runner, args.preview)

    def make(tmp: Path) -> Any:
        progress = Progress(use_bars=False if args.no_progress else None)
        return Runtime(task_paths, args.builder_paths, tmp, small, progress=progress)

    with quiet_libraries(runtime.output_dir, args.verbose):
        empty = run_preview(make, full, args.preview, _run)
    if empty < 0:
        return EXIT_INTERRUPTED
    print("nothing was written to the tasks' output folders; run without --preview to generate")
    return EXIT_OK if empty == 0 else EXIT_FAILED


def _validate(runtime: Any) -> int:
    """``--validate``: load and check every task, say which are fine, then report every
    problem of the others in one message (exit 2)."""
    import asyncio

    from fms_dgt.errors import ConfigError, Problems

    problems = Problems()
    with problems.check():
        runtime.prepare()
    for err in asyncio.run(runtime.pool.reachability_problems()):
        problems.add(err)
    problem: ConfigError | None = None
    try:
        problems.raise_if_any()
    except ConfigError as err:
        problem = err
    for pt in runtime.prepared:
        print(
            f"ok  {pt.task.task_name}  ({pt.task.yaml_doc.path if pt.task.yaml_doc else ''}, "
            f"builder {pt.task.data_builder})"
        )
    if problem is not None:
        sys.stdout.flush()
        raise problem
    print(f"{len(runtime.prepared)} task(s) valid")
    return EXIT_OK


def _stop_on_sigterm() -> Any:
    """SIGTERM outside the event loop behaves like Ctrl-C (KeyboardInterrupt), so a stop
    sent while tasks load, or while the summary prints, still exits 130 with a message
    instead of killing the process silently. While tasks run, the loop's own handlers
    (``_run``) take over and stop them cleanly."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    import threading

    if threading.current_thread() is not threading.main_thread():
        return None  # handlers can only be set from the main thread
    return signal.signal(signal.SIGTERM, interrupt)


def _run(runtime: Any) -> list[Any] | None:
    import asyncio

    log = logging.getLogger("fms_dgt.run")

    async def supervised() -> list[Any]:
        loop = asyncio.get_running_loop()
        main_task = asyncio.current_task()
        hits = {"n": 0}

        def on_signal(sig: signal.Signals) -> None:
            hits["n"] += 1
            if hits["n"] == 1:
                log.warning("received %s: stopping cleanly (send again to force)", sig.name)
                main_task.cancel()  # type: ignore[union-attr]
            else:
                _force_exit()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        return await runtime.run()

    try:
        factory = _loop_factory()
        if factory is None or sys.version_info < (3, 11):
            return asyncio.run(supervised())
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(supervised())
    except (asyncio.CancelledError, KeyboardInterrupt):
        return None
    finally:
        _stop_on_sigterm()  # the loop's handlers are gone with it


def _force_exit() -> None:
    """Exit at once (a second stop signal), without leaving model processes behind: the
    children this process started (vLLM's engine core, servers a ``vllm-server`` engine
    launched) are killed with their own children first, since the exit handlers that would
    stop them cleanly are skipped."""
    import multiprocessing

    servers = sys.modules.get("fms_dgt.engines.vllm_server")
    if servers is not None:
        servers.kill_started_servers()
    for child in multiprocessing.active_children():
        child.kill()
    os._exit(EXIT_INTERRUPTED)


def _leave_stuck_builder_calls(grace: float = 2.0) -> None:
    """Exit now if plain builder calls are still running in worker threads after a stop.

    Their results are no longer wanted (nothing they return is recorded), but Python joins
    worker threads at exit, so one builder blocked in a slow call (a sleep, a request with
    no timeout) would keep an interrupted run alive until it returns. After a short grace
    period the atexit handlers (which stop engine servers) run, then the process exits
    without joining those threads."""
    import atexit
    import threading
    import time

    # the run is already stopped: another signal now means "exit at once", as during the run
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: _force_exit())
    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread.name.startswith("dgt-builder") and thread.is_alive():
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in threading.enumerate() if t.name.startswith("dgt-builder") and t.is_alive()]
    if not stuck:
        return
    logging.getLogger("fms_dgt.run").warning(
        "%d builder call(s) still running; exiting without waiting for them", len(stuck)
    )
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(EXIT_INTERRUPTED)


def _loop_factory() -> Callable[[], Any] | None:
    """uvloop's event loop when it is installed (``DGT_EVENT_LOOP=asyncio`` opts out).

    Why: it costs less CPU per request, and it reads sockets into one reused buffer where
    asyncio allocates 256 KiB per ``recv`` and shrinks it; over a long run those allocations
    fragment the C heap and peak RSS creeps up with the number of records (measured in
    docs/benchmarks.md). Only the runtime's own loop changes; engines that keep private
    loops (in-process vLLM) create theirs as before.
    """
    if os.environ.get("DGT_EVENT_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _overrides(args: argparse.Namespace) -> Any:
    from fms_dgt.config.overrides import Overrides, load_override_file

    ov = load_override_file(args.config_path) if args.config_path else Overrides()
    cli_runner = {
        "num_outputs_to_generate": args.num_outputs_to_generate,
        "seed_batch_size": args.seed_batch_size,
        "machine_batch_size": args.machine_batch_size,
        "max_concurrent_calls": args.max_concurrent_calls,
        "seed": args.seed,
        "max_cost_usd": args.max_cost_usd,
        "max_tokens_total": args.max_tokens_total,
        "max_seconds": args.max_seconds,
    }
    given = {k: v for k, v in cli_runner.items() if v is not None}
    _check_runner_flags(given)
    ov.runner.update(given)
    engine = {
        key: getattr(args, flag) for flag, key in ENGINE_FLAGS.items() if getattr(args, flag) is not None
    }
    if isinstance(engine.get("base_url"), list) and len(engine["base_url"]) == 1:
        engine["base_url"] = engine["base_url"][0]
    profile_keys: dict[str, str] = {}
    if args.profile is not None:
        from fms_dgt.engines.profiles import profile_engine

        preset = profile_engine(args.profile, engine.get("type"))
        profile_keys = {key: "--profile" for key in preset if key not in engine}
        engine = {**preset, **engine}  # explicit engine flags win, key by key
    if engine:
        if "type" not in engine:
            from fms_dgt.errors import ConfigError

            raise ConfigError(
                "engine flags need --engine TYPE", field="--engine", hint="e.g. --engine openai"
            )
        # flags win over the override file's engines section, key by key, when both name the
        # same engine type (so the file can carry timeouts and retries for a --engine run)
        file_engine = ov.engine or {}
        same_type = file_engine.get("type") == engine["type"]
        ov.engine = {**file_engine, **engine} if same_type else engine
        ov.engine_from_file = same_type
        ov.engine_flags = {
            **{key: "--" + flag.replace("_", "-") for flag, key in ENGINE_FLAGS.items()},
            **profile_keys,
        }
    return ov


def _check_runner_flags(given: dict[str, Any]) -> None:
    """The runner flags obey the same bounds as ``runner_config`` in a task.yaml (say,
    ``--num-outputs-to-generate 0`` is an error, not an empty run)."""
    from fms_dgt.config.messages import validated
    from fms_dgt.config.schema import RunnerConfig
    from fms_dgt.errors import ConfigError

    for key, value in given.items():
        try:
            validated(RunnerConfig, {key: value}, None)
        except ConfigError as err:
            raise ConfigError(
                err.message,
                field="--" + key.replace("_", "-"),
                hint=RunnerConfig.model_fields[key].description,
            ) from None


if __name__ == "__main__":
    from fms_dgt.console import run_cli

    sys.exit(run_cli(main))
