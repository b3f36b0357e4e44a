"""Running generated code and tool implementations in a separate, limited process.

``run_code(code, limits)`` runs a Python program; ``run_callable("module:function",
arguments, limits)`` calls one function with JSON arguments and returns its JSON value.
Both are coroutines and share a per-event-loop bound on concurrent children. What each
layer of isolation does and does not protect against: docs/sandbox.md.
"""

from fms_dgt.sandbox.limits import Limits, SandboxResult, Status
from fms_dgt.sandbox.runner import Sandbox, default_sandbox, run_callable, run_code

__all__ = ["Limits", "SandboxResult", "Status", "Sandbox", "default_sandbox", "run_callable", "run_code"]
