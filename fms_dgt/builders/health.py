"""Telling a sick engine from a task that makes nothing acceptable.

A builder call can return nothing because the model's answers were all rejected (the task
stalls: ``max_stalled_attempts``), or because its requests failed. Two kinds of failure
say nothing about the task and are handled here instead:

* **transient** (5xx, 429, timeouts, dropped connections), after the engine's own retries:
  the server is down. Counting such calls as stalls would end an hours-long run over a
  one-minute outage, so they are waited out for up to ``max_outage_seconds`` without a
  single successful request; then the task stops as stalled, naming the last error.
* **fatal** (400, 401, 404...): if the first requests of a run all fail this way and none
  succeeds, retrying cannot help (a wrong URL, model name or key). The task stops at once
  with the server's status and message instead of writing a failure record per request.
"""

from __future__ import annotations

import logging
import time

from fms_dgt.errors import FatalEngineError, StalledError
from fms_dgt.ledger import Ledger

log = logging.getLogger("fms_dgt.run")
FATAL_FAILURES_TO_STOP = 8


class EngineHealth:
    """Watches the ledger's request outcomes between builder calls."""

    def __init__(self, ledger: Ledger, outage_limit: float, task_name: str, fatal_limit: int) -> None:
        self.ledger = ledger
        self.limit = outage_limit
        self.task_name = task_name
        self.fatal_limit = max(1, min(fatal_limit, FATAL_FAILURES_TO_STOP))
        self.since: float | None = None
        self._ok = ledger.engine_ok
        self._transient = ledger.engine_transient_failures

    def check_fatal(self) -> None:
        """Stop the task when every request so far failed in a way retrying cannot fix."""
        ledger = self.ledger
        if ledger.engine_ok or ledger.engine_fatal_failures < self.fatal_limit:
            return
        error = ledger.last_engine_error or "unknown error"
        hint = ""
        if "HTTP 404" in error:
            hint = " Check base_url (OpenAI-compatible servers usually serve under /v1) and the model name."
        elif "HTTP 401" in error or "HTTP 403" in error:
            hint = " Check the API key (api_key_env names the variable that holds it)."
        raise FatalEngineError(
            f"{self.task_name}: the first {ledger.engine_fatal_failures} LLM requests all failed and "
            f"retrying cannot help: {error}.{hint} Details in {ledger.failed.location}"
        )

    def failing(self) -> bool:
        """True while the server looks down: requests failed transiently since the last
        success and none succeeded since (several calls can end on one failure burst)."""
        self.check_fatal()
        ok, transient = self.ledger.engine_ok, self.ledger.engine_transient_failures
        succeeded, failed = ok > self._ok, transient > self._transient
        self._ok, self._transient = ok, transient
        if succeeded:
            self.clear()
            return False
        if not failed and self.since is None:
            return False
        now = time.monotonic()
        if self.since is None:
            self.since = now
            log.warning(
                "%s: LLM requests are failing (%s); waiting", self.task_name, self.ledger.last_engine_error
            )
        elif now - self.since > self.limit:
            raise StalledError(
                f"{self.task_name}: no LLM request succeeded for {now - self.since:.0f}s "
                f"(max_outage_seconds={self.limit:g}); last error: {self.ledger.last_engine_error}. "
                "Run the same command again once the server is back"
            )
        return True

    def clear(self) -> None:
        if self.since is not None:
            log.info("%s: LLM requests succeed again", self.task_name)
        self.since = None
