"""Formatters for tool-calling conversations (records with ``messages`` in the OpenAI
tool-call format and ``tools``, such as the ``tool_calling`` builder's):

- ``tool_calling`` (IBM fms-dgt's ``tool_calling/formatters/multi_turn``):
  ``{"conversation_id", "messages", "tools"}``, the whole conversation (system message,
  user turns, assistant ``tool_calls``, ``tool`` results, answers);
- ``tool_calls`` (fms-dgt's ``tool_calling/formatters/single_turn``): the same with only
  the users' messages and the assistant's calls, to train the choice of calls alone.

``system: false`` leaves the system message out (the tools are in ``tools`` as well).
"""

from __future__ import annotations

from typing import Any

from fms_dgt.formatters.base import Formatter
from fms_dgt.registry import register_formatter


@register_formatter("tool_calling", "tool_calling/formatters/multi_turn")
class ToolConversationFormatter(Formatter):
    """``{conversation_id, messages, tools}`` per record."""

    def __init__(self, system: bool = True, name: str | None = None) -> None:
        super().__init__(name)
        self.system = system

    def fields_read(self) -> dict[str, set[str]]:
        return {"type": {"id", "messages", "tools"}}

    def keep(self, message: dict[str, Any]) -> bool:
        return self.system or message.get("role") != "system"

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        messages = [m for m in record["messages"] if self.keep(m)]
        return {"conversation_id": record["id"], "messages": messages, "tools": record["tools"]}


@register_formatter("tool_calls", "tool_calling/formatters/single_turn")
class ToolCallsFormatter(ToolConversationFormatter):
    """The users' messages and the assistant's ``tool_calls`` only."""

    def keep(self, message: dict[str, Any]) -> bool:
        role = message.get("role")
        if role == "assistant":
            return bool(message.get("tool_calls"))
        return role == "user" or (role == "system" and self.system)
