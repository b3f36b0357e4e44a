"""Built-in formatters: a Jinja template formatter and an OpenAI chat-messages formatter."""

from __future__ import annotations

from typing import Any

import jinja2
import jinja2.meta

from fms_dgt.formatters.base import Formatter
from fms_dgt.registry import register_formatter

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


def _compile(source: str, what: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"{what} is not a valid Jinja template (line {exc.lineno}: {exc.message})") from None


def _variables(source: str) -> set[str]:
    """Top-level names a template reads (``{{ a.b }}`` reads ``a``; loop variables excluded)."""
    return set(jinja2.meta.find_undeclared_variables(_ENV.parse(source)))


def _render(template: jinja2.Template, record: dict[str, Any], what: str) -> str:
    try:
        return template.render(**record)
    except jinja2.UndefinedError as exc:
        raise ValueError(f"{what}: {exc.message}; record fields: {', '.join(sorted(record))}") from None


@register_formatter("jinja", "template", "formatters/template", "formatters/native")
class JinjaFormatter(Formatter):
    """Render each record into named output fields with Jinja templates.

    ``fields: {input: "Q: {{question}}", output: "{{answer}}"}`` yields
    ``{"input": ..., "output": ...}`` per record; the text-generation / summarization /
    extractive-QA layouts are just different templates.

    ``format`` is the same thing as IBM fms-dgt's template and native formatters spell it
    (their task files work unchanged): a mapping of templates, or one template whose
    rendering becomes the record's ``text``.
    """

    def __init__(
        self,
        fields: dict[str, str] | None = None,
        format: dict[str, str] | str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if (fields is None) == (format is None):
            raise ValueError("the jinja formatter needs 'fields' (a mapping of templates), or 'format'")
        key = "fields" if fields is not None else "format"
        spec = fields if fields is not None else format
        templates = {"text": spec} if isinstance(spec, str) else dict(spec or {})
        if not templates:
            raise ValueError(f"the jinja formatter needs at least one entry in '{key}'")
        self._paths = {k: key if isinstance(spec, str) else f"{key}.{k}" for k in templates}
        self.templates = {k: _compile(v, self._paths[k]) for k, v in templates.items()}
        self._sources = {self._paths[k]: v for k, v in templates.items()}

    def fields_read(self) -> dict[str, set[str]]:
        return {k: _variables(v) for k, v in self._sources.items()}

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: _render(t, record, self._paths[k]) for k, t in self.templates.items()}


@register_formatter("chat", "openai_chat", "messages")
class ChatMessagesFormatter(Formatter):
    """OpenAI chat fine-tuning format: ``{"messages": [{"role": ..., "content": ...}]}``.

    ``user`` and ``assistant`` are Jinja templates over record fields (defaults suit the
    simple builder's question/answer records); ``system`` is optional.
    """

    def __init__(
        self,
        user: str = "{{ question }}",
        assistant: str = "{{ answer }}",
        system: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.system = _compile(system, "system") if system else None
        self.user = _compile(user, "user")
        self.assistant = _compile(assistant, "assistant")
        self._sources = {"user": user, "assistant": assistant, **({"system": system} if system else {})}

    def fields_read(self) -> dict[str, set[str]]:
        return {k: _variables(v) for k, v in self._sources.items()}

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        messages = []
        if self.system is not None:
            messages.append({"role": "system", "content": _render(self.system, record, "system")})
        messages.append({"role": "user", "content": _render(self.user, record, "user")})
        messages.append({"role": "assistant", "content": _render(self.assistant, record, "assistant")})
        return {"messages": messages}
