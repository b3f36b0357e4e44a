"""Task and record types of the ``chat_generation`` builder: the next assistant turn of a
conversation in OpenAI chat format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fms_dgt import DataPoint, TransformationTask
from fms_dgt.registry import did_you_mean

ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content", "name")
MAX_GENERATIONS = 16


def check_messages(messages: Any) -> None:
    """Raise ValueError saying what is wrong with ``messages`` as a conversation to continue:
    a non-empty list of ``{role, content}`` mappings (``name`` allowed), roles among system,
    user and assistant, a system message only first, the last message from the user."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {role, content} mappings")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"message {i} is a {type(message).__name__}, not a {{role, content}} mapping")
        extra = [k for k in message if k not in MESSAGE_KEYS]
        if extra:
            close = did_you_mean(str(extra[0]), list(MESSAGE_KEYS))
            raise ValueError(
                f"message {i} has key '{extra[0]}'; a message has role, content and optionally name"
                + (f" ({close})" if close else "")
            )
        role = message.get("role")
        if role not in ROLES:
            close = did_you_mean(str(role), list(ROLES)) if isinstance(role, str) else None
            what = f"role '{role}'" if role is not None else "no role"
            raise ValueError(
                f"message {i} has {what}; roles are user, assistant and system"
                + (f" ({close})" if close else "")
            )
        if not isinstance(message.get("content"), str):
            raise ValueError(f"message {i} ({role}) needs a text 'content'")
        if role == "system" and i > 0:
            raise ValueError(f"message {i} is a system message; only the first message may be one")
    if messages[-1]["role"] != "user":
        raise ValueError(
            f"the last message is from the {messages[-1]['role']}; it must be from the user "
            "(the builder writes the assistant's answer to it)"
        )


@dataclass(kw_only=True)
class Conversation(DataPoint):
    """An input row: the conversation so far, ending with a user message."""

    messages: list[dict[str, Any]]

    def __post_init__(self) -> None:
        check_messages(self.messages)
        super().__post_init__()


@dataclass(kw_only=True)
class ChatTurn(DataPoint):
    """The assistant's next turn (``generation``) and the conversation with it appended
    (``conversation``); ``messages`` is the input conversation as it was sent (with the
    task's ``system_prompt`` when it had none)."""

    messages: list[dict[str, Any]]
    generation: str
    conversation: list[dict[str, Any]] = field(default_factory=list)
    generation_index: int = 0
    model_name: str | None = None


class ChatGenerationTask(TransformationTask):
    """task.yaml keys (besides the usual ones):

    - ``num_generations``: next turns per conversation, sampled in one request (1..16,
      default 1); each is a record with its own ``conversation``.
    - ``system_prompt``: a system message put first in conversations that have none.
    """

    INPUT_DATA_TYPE = Conversation
    OUTPUT_DATA_TYPE = ChatTurn

    def __init__(self, *, num_generations: int = 1, system_prompt: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 1 <= num_generations <= MAX_GENERATIONS:
            raise self.config_error(
                f"num_generations must be between 1 and {MAX_GENERATIONS}, got {num_generations}",
                "num_generations",
            )
        if system_prompt is not None and not system_prompt.strip():
            raise self.config_error(
                "system_prompt is empty", "system_prompt", hint="write one, or leave the key out"
            )
        self.num_generations = num_generations
        self.system_prompt = system_prompt
