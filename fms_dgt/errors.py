"""The exception tree of fms_dgt.

Everything the framework raises on purpose derives from ``DGTError``::

    DGTError
     ├── ConfigError              bad user input (YAML, CLI flag, seed file): exit status 2
     │    ├── ConfigErrors        several of them, found in one pass, reported together
     │    ├── RegistryError       unknown or duplicate registered name
     │    └── MissingDependencyError   an optional package is not installed
     ├── EngineError              one LLM request attempt failed
     │    ├── RetryableEngineError     worth another attempt (timeouts, 429, 5xx, bad body)
     │    └── FatalEngineError         cannot succeed by retrying (400, 401, 404)
     │         └── EngineStartError        the engine itself cannot start: its tasks stop
     ├── DatastoreError           reading or writing records failed
     │    └── DiskFullError       the disk (or quota) is full: free space, run again
     ├── TaskLockedError          another process is running the same task
     └── StalledError             a task stopped making progress

``ConfigError`` carries the file, line and field so the CLI can print one precise line and
exit with status 2 instead of a traceback; that is the contract users rely on when a
task.yaml is wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


class DGTError(Exception):
    """Base of every error fms_dgt raises deliberately."""


class ConfigError(DGTError):
    """A user-supplied configuration is wrong.

    Args:
        message: what is wrong and, where possible, how to fix it.
        file: the YAML/seed file the problem is in.
        line: 1-based line number in ``file``.
        field: dotted path of the offending key (``runner_config.seed_batch_size``).
        hint: a suggestion such as ``did you mean 'seed_examples'?``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        """One line a user can act on: ``file:line: field: message (hint)``."""
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        parts = [p for p in (where, f"field '{self.field}'" if self.field else "") if p]
        head = ": ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def located(
        self, *, file: str | Path | None = None, line: int | None = None, field: str | None = None
    ) -> ConfigError:
        """Return a copy with missing location parts filled in (keeps what is already known)."""
        err = type(self).__new__(type(self))
        ConfigError.__init__(
            err,
            self.message,
            file=self.file or file,
            line=self.line or line,
            field=self.field or field,
            hint=self.hint,
        )
        return err


class ConfigErrors(ConfigError):
    """Every problem found while checking a file (or every selected task), so a user fixes
    them in one round instead of one per run. Renders as one line per problem; the location
    attributes are those of the first problem."""

    errors: list[ConfigError]

    def __init__(self, errors: list[ConfigError]) -> None:
        flat: list[ConfigError] = []
        for err in errors:
            flat.extend(err.errors if isinstance(err, ConfigErrors) else [err])
        if not flat:
            raise ValueError("ConfigErrors needs at least one error")
        flat.sort(key=lambda e: (e.file or "", e.line or 0))  # stable: a file's problems in line order
        self.errors = flat
        first = flat[0]
        ConfigError.__init__(
            self, first.message, file=first.file, line=first.line, field=first.field, hint=first.hint
        )

    def render(self) -> str:
        if len(self.errors) == 1:
            return self.errors[0].render()
        lines = [f"{len(self.errors)} problems:"]
        lines += [f"  {err.render()}" for err in self.errors]
        return "\n".join(lines)

    def located(
        self, *, file: str | Path | None = None, line: int | None = None, field: str | None = None
    ) -> ConfigError:
        return ConfigErrors([e.located(file=file, line=line, field=field) for e in self.errors])


class Problems:
    """Collects ConfigErrors from independent checks so all of them are reported at once::

    problems = Problems()
    with problems.check():
        check_runner_config(...)
    with problems.check():
        check_seeds(...)
    problems.raise_if_any()
    """

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    @contextlib.contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as err:
            self.add(err)

    def add(self, err: ConfigError) -> None:
        self.errors.extend(err.errors if isinstance(err, ConfigErrors) else [err])

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise self.errors[0] if len(self.errors) == 1 else ConfigErrors(self.errors)


class RegistryError(ConfigError):
    """A name is not registered, or registered twice."""


class MissingDependencyError(ConfigError):
    """A component needs an optional package; the message carries the pip command."""


class EngineError(DGTError):
    """One attempt at an LLM request failed."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class RetryableEngineError(EngineError):
    """A failure that may succeed on a later attempt (timeout, 429, 5xx, malformed body)."""


class FatalEngineError(EngineError):
    """A failure that retrying cannot fix (bad request, auth, unknown model)."""


class EngineStartError(FatalEngineError):
    """The engine could not start (model failed to load, server never became ready). Unlike
    a failed request this stops every task using the engine: no request can succeed, and
    trying again per builder call would relaunch a broken model once per call."""


class DatastoreError(DGTError):
    """Records could not be read or written."""


class DiskFullError(DatastoreError):
    """No space left where a store writes. Nothing accepted is lost (records count only
    once written), so the way out is to free space and run the same command again."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        super().__init__(
            f"the disk is full: could not write {path}. Nothing accepted is lost; free some space "
            "and run the same command again (it continues where this run stopped)"
        )


class TaskLockedError(DGTError):
    """Another live process holds the lock of this task's output directory."""


class StalledError(DGTError):
    """A generation task made no progress for ``max_stalled_attempts`` attempts."""
