"""Formatters for whole conversations (records with ``messages``, such as the
``conversation`` builder's): the chat as training data, keyed by the record's id.

- ``conversation`` (IBM fms-dgt's ``formatters/conversation/messages``):
  ``{"conversation_id": <id>, "messages": [...]}``;
- ``grounded_conversation`` (fms-dgt's ``formatters/conversation/rag/static``): the same plus
  ``documents``, the documents the conversation is grounded in.

``system: false`` leaves system messages out (fms-dgt's records have none).
"""

from __future__ import annotations

from typing import Any

from fms_dgt.formatters.base import Formatter
from fms_dgt.registry import register_formatter


@register_formatter("conversation", "formatters/conversation/messages")
class ConversationFormatter(Formatter):
    """``{conversation_id, messages}`` per record."""

    FIELDS: tuple[str, ...] = ("messages",)

    def __init__(self, system: bool = True, name: str | None = None) -> None:
        super().__init__(name)
        self.system = system

    def fields_read(self) -> dict[str, set[str]]:
        return {"type": {"id", *self.FIELDS}}

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        messages = [
            {"role": m["role"], "content": m["content"]}
            for m in record["messages"]
            if self.system or m.get("role") != "system"
        ]
        return {"conversation_id": record["id"], "messages": messages}


@register_formatter("grounded_conversation", "formatters/conversation/rag/static")
class GroundedConversationFormatter(ConversationFormatter):
    """``{conversation_id, messages, documents}`` per record."""

    FIELDS = ("messages", "documents")

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        return {**super().format(record), "documents": record["documents"]}
