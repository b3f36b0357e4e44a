"""What the terminal shows, and the log file that keeps everything else.

By default the console shows the run: progress (bars on a terminal, a line every few
seconds otherwise), our own messages, warnings that concern the user, and the summary.
Everything else goes to ``<output_dir>/fms_dgt.log``: our debug details and, above all, the
model libraries' own output. vLLM prints dozens of start-up warnings on CPU, from this
process (its own log handler writes to stdout) and from its engine-core child process
(which inherits this process's stdout and stderr), plus tqdm bars and Python warnings from
torch. So while a run goes:

* vLLM is told not to install its handler (``VLLM_CONFIGURE_LOGGING=0``); its loggers, and
  torch's, transformers' and Python's ``warnings``, write to the log file only;
* file descriptors 1 and 2 point at the log file, so child processes and C libraries write
  there too; ``sys.stdout``/``sys.stderr`` keep the terminal for our own output.

``-v`` shows everything on the console, as the libraries print it, and nothing is moved.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO

LOG_FILE = "fms_dgt.log"
# loggers of the libraries whose own output belongs in the log file, not on the console
LIBRARY_LOGGERS = (
    "vllm",
    "torch",
    "transformers",
    "py.warnings",
    "httpx",
    "openai",
    "urllib3",
    "filelock",
    "datasets",
)
_KEPT_OPEN: list[IO[str] | None] = []
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Secrets taken from the environment never reach a console or a log file."""

    def format(self, record: logging.LogRecord) -> str:
        from fms_dgt.config.env import redact

        return redact(super().format(record))


def setup_console(verbose: bool) -> None:
    """Our messages to the console: INFO and up (DEBUG with ``-v``); libraries' at WARNING
    until a run moves them to its log file."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(_FORMAT, "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("fms_dgt").setLevel(logging.DEBUG if verbose else logging.INFO)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "DEBUG" if verbose else "INFO")
    if not verbose:
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")  # vLLM's records come to our handlers
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


@contextmanager
def quiet_libraries(output_dir: Path, verbose: bool) -> Iterator[Path | None]:
    """For the length of a run: library output to ``<output_dir>/fms_dgt.log`` (yields its
    path), the console kept for our own; nothing changes with ``verbose``."""
    if verbose:
        yield None
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / LOG_FILE
    log_file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed below
    log_file.write(f"\n==== run started {datetime.now().isoformat(timespec='seconds')} (pid {os.getpid()})\n")
    file_handler = logging.StreamHandler(log_file)
    file_handler.setFormatter(RedactingFormatter(_FORMAT, "%Y-%m-%d %H:%M:%S"))
    logging.captureWarnings(True)
    libraries = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    saved = [(lg, lg.propagate, list(lg.handlers)) for lg in libraries]
    for lg in libraries:
        lg.handlers[:] = [file_handler]
        lg.propagate = False
    ours = logging.getLogger("fms_dgt")
    ours.addHandler(file_handler)  # also in the file (the console keeps them through root)
    console_out, console_err = _redirect_fds(log_file)
    try:
        yield path
    finally:
        _restore_fds(console_out, console_err)
        ours.removeHandler(file_handler)
        for lg, propagate, handlers in saved:
            lg.handlers[:] = handlers
            lg.propagate = propagate
        logging.captureWarnings(False)
        log_file.close()


def _redirect_fds(log_file: IO[str]) -> tuple[int, int]:
    """Point fds 1 and 2 at the log file; ``sys.stdout``/``sys.stderr`` (and our console
    handler) keep writing to the terminal through duplicates of the original fds."""
    sys.stdout.flush()
    sys.stderr.flush()
    out, err = os.dup(1), os.dup(2)
    os.dup2(log_file.fileno(), 1)
    os.dup2(log_file.fileno(), 2)
    _swap_streams(os.fdopen(os.dup(out), "w", buffering=1), os.fdopen(os.dup(err), "w", buffering=1))
    return out, err


def _restore_fds(out: int, err: int) -> None:
    terminal = (sys.stdout, sys.stderr)
    for stream in terminal:
        stream.flush()
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    _swap_streams(sys.__stdout__, sys.__stderr__)
    # The duplicates made for the run stay open: a library that created a handler during
    # the run (torch does, on import) holds them and writes through them at exit.
    _KEPT_OPEN.extend(terminal)


def _swap_streams(out: IO[str] | None, err: IO[str] | None) -> None:
    old_err = sys.stderr
    sys.stdout, sys.stderr = out, err
    for handler in logging.getLogger().handlers:  # the console handler follows sys.stderr
        if isinstance(handler, logging.StreamHandler) and handler.stream is old_err:
            handler.setStream(err)
