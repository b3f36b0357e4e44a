"""Formatters: final records → training formats."""

from fms_dgt.formatters.base import FormatRejected, Formatter
from fms_dgt.registry import formatters

formatters.add(
    "jinja",
    "fms_dgt.formatters.templates:JinjaFormatter",
    "template",
    "formatters/template",
    "formatters/native",
)
formatters.add("chat", "fms_dgt.formatters.templates:ChatMessagesFormatter", "openai_chat", "messages")
formatters.add(
    "conversation",
    "fms_dgt.formatters.conversation:ConversationFormatter",
    "formatters/conversation/messages",
)
formatters.add(
    "grounded_conversation",
    "fms_dgt.formatters.conversation:GroundedConversationFormatter",
    "formatters/conversation/rag/static",
)
formatters.add(
    "safety_refusal", "fms_dgt.formatters.safety:SafetyRefusalFormatter", "formatters/safety/refusal"
)
formatters.add(
    "tool_calling",
    "fms_dgt.formatters.tools:ToolConversationFormatter",
    "tool_calling/formatters/multi_turn",
)
formatters.add(
    "tool_calls", "fms_dgt.formatters.tools:ToolCallsFormatter", "tool_calling/formatters/single_turn"
)
formatters.add("preference", "fms_dgt.formatters.preference:PreferenceFormatter", "dpo")
formatters.add("input_output", "fms_dgt.formatters.finetune:InputOutputFormatter")
formatters.add("extractive_qa", "fms_dgt.formatters.finetune:ExtractiveQAFormatter", "squad")

__all__ = ["FormatRejected", "Formatter"]
