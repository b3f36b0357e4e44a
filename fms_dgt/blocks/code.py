"""Validators for generated Python: does it parse, and do its tests pass when run.

``python_tests`` executes model-written code, so it runs it in the sandbox
(``fms_dgt.sandbox``: a separate process with CPU, wall-time and memory limits, no network,
a private folder; docs/sandbox.md says what that does and does not protect against).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.datapoint import get_field
from fms_dgt.errors import ConfigError
from fms_dgt.sandbox.harness import run_python_tests, syntax_problem
from fms_dgt.sandbox.limits import Limits


class PythonSyntax(FilterBlock):
    """Reject records whose listed fields are not valid Python (``ast.parse``).

    Args:
        fields: the fields holding Python source (default ``[code]``).
    """

    kind = "python_syntax"

    def __init__(self, name: str | None = None, fields: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(name, fields=fields or ["code"], **kwargs)

    def check(self, record: Any) -> str | None:
        for field in self.fields or ():
            value = get_field(record, field)
            if not isinstance(value, str) or not value.strip():
                return f"field '{field}' is empty"
            problem = syntax_problem(value, field)
            if problem:
                return problem
        return None


def sandbox_limits(config: dict[str, Any] | None) -> Limits:
    """``Limits`` from a ``sandbox:`` mapping of YAML, as a located config error if wrong."""
    if config is not None and not isinstance(config, dict):
        raise ConfigError(
            f"sandbox must be a mapping of limits, got {type(config).__name__}", field="sandbox"
        )
    try:
        return Limits.from_config(config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), field="sandbox", hint="see docs/sandbox.md for the keys") from None


class PythonTests(FilterBlock):
    """Run a record's tests against its code in the sandbox; reject it when they fail,
    time out or run out of memory, with the end of the failing output in the reason.
    Accepted records keep the run's status and durations in ``lineage.tests``.

    Args:
        code_field: the field holding the solution (default ``code``).
        tests_field: the field holding the tests: asserts and/or ``test_*`` functions
            (default ``tests``).
        sandbox: limits (``cpu_seconds``, ``wall_seconds``, ``memory_mb``, ...; docs/sandbox.md).
    """

    kind = "python_tests"

    def __init__(
        self,
        name: str | None = None,
        code_field: str = "code",
        tests_field: str = "tests",
        sandbox: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.code_field, self.tests_field = code_field, tests_field
        self.limits = sandbox_limits(sandbox)

    async def acheck(self, record: Any) -> str | None:
        code = get_field(record, self.code_field)
        tests = get_field(record, self.tests_field)
        for field, value in ((self.code_field, code), (self.tests_field, tests)):
            if not isinstance(value, str) or not value.strip():
                return f"field '{field}' is empty"
        run = await run_python_tests(code, tests, self.limits)
        if run.passed:
            _lineage(record)["tests"] = run.summary()
        return run.reason

    def check(self, record: Any) -> str | None:
        """Blocking form, for postprocessing (a worker thread, never the event loop)."""
        return asyncio.run(self.acheck(record))


def _lineage(record: Any) -> dict[str, Any]:
    holder = record if isinstance(record, dict) else None
    lineage = holder.get("lineage") if holder is not None else getattr(record, "lineage", None)
    if not isinstance(lineage, dict):
        lineage = {}
        if holder is not None:
            holder["lineage"] = lineage
        else:
            record.lineage = lineage
    return lineage
