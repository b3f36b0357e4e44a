"""Formatters: final records → training formats."""

from fms_dgt.formatters.base import Formatter
from fms_dgt.registry import formatters

formatters.add(
    "jinja",
    "fms_dgt.formatters.templates:JinjaFormatter",
    "template",
    "formatters/template",
    "formatters/native",
)
formatters.add("chat", "fms_dgt.formatters.templates:ChatMessagesFormatter", "openai_chat", "messages")
formatters.add("preference", "fms_dgt.formatters.preference:PreferenceFormatter", "dpo")

__all__ = ["Formatter"]
