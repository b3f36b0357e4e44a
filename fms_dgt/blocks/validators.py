"""Per-record validators: cheap, deterministic checks that reject malformed records as they
arrive, each rejection carrying a reason a user can act on."""

from __future__ import annotations

import json
import re
from typing import Any

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.datapoint import get_field
from fms_dgt.errors import ConfigError


class RequiredFields(FilterBlock):
    """Reject records whose listed fields are missing, None, or blank strings / empty lists."""

    kind = "required_fields"

    def __init__(self, name: str | None = None, fields: list[str] | None = None, **kwargs: Any) -> None:
        if not fields:
            raise ValueError("required_fields needs 'fields': the fields that must be non-empty")
        super().__init__(name, fields=fields, **kwargs)

    def check(self, record: Any) -> str | None:
        for name in self.fields or ():
            value = get_field(record, name)
            if value is None or (isinstance(value, str) and not value.strip()) or value in ([], {}):
                return f"field '{name}' is empty"
        return None


class LengthBounds(FilterBlock):
    """Reject text shorter or longer than the bounds, in characters or whitespace tokens."""

    kind = "length"

    def __init__(
        self,
        name: str | None = None,
        min_chars: int | None = None,
        max_chars: int | None = None,
        min_tokens: int | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.min_chars, self.max_chars = min_chars, max_chars
        self.min_tokens, self.max_tokens = min_tokens, max_tokens

    def check(self, record: Any) -> str | None:
        text = self.text_of(record)
        n = len(text)
        if self.min_chars is not None and n < self.min_chars:
            return f"too short: {n} chars < min_chars {self.min_chars}"
        if self.max_chars is not None and n > self.max_chars:
            return f"too long: {n} chars > max_chars {self.max_chars}"
        if self.min_tokens is not None or self.max_tokens is not None:
            t = len(text.split())
            if self.min_tokens is not None and t < self.min_tokens:
                return f"too short: {t} tokens < min_tokens {self.min_tokens}"
            if self.max_tokens is not None and t > self.max_tokens:
                return f"too long: {t} tokens > max_tokens {self.max_tokens}"
        return None


class RegexFilter(FilterBlock):
    """Reject text that fails to match ``must_match`` or matches ``must_not_match``."""

    kind = "regex"

    def __init__(
        self,
        name: str | None = None,
        must_match: str | None = None,
        must_not_match: str | None = None,
        ignore_case: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        flags = re.IGNORECASE if ignore_case else 0
        try:
            self.must = re.compile(must_match, flags) if must_match else None
            self.must_not = re.compile(must_not_match, flags) if must_not_match else None
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None

    def check(self, record: Any) -> str | None:
        text = self.text_of(record)
        if self.must is not None and not self.must.search(text):
            return f"does not match {self.must.pattern!r}"
        if self.must_not is not None and self.must_not.search(text):
            return f"matches forbidden {self.must_not.pattern!r}"
        return None


_JSON_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")


class JsonSchemaFilter(FilterBlock):
    """Parse a field as JSON (or take it as already-parsed) and validate it against a schema.

    Args:
        field: the field holding JSON text or a parsed value.
        schema: a JSON schema; None only checks that the text parses.
    """

    kind = "json_schema"

    def __init__(
        self, name: str | None = None, field: str = "", schema: dict | None = None, **kwargs: Any
    ) -> None:
        if not field:
            raise ValueError("json_schema needs 'field': the record field holding JSON")
        super().__init__(name, **kwargs)
        self.field = field
        self.schema = schema
        self._validator: Any = None
        if schema is not None:
            import jsonschema

            if not isinstance(schema, dict):
                raise ConfigError(
                    f"schema must be a mapping (a JSON schema), got {type(schema).__name__}", field="schema"
                )
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                path = list(exc.absolute_path)
                where = "/".join(str(p) for p in path) or "(root)"
                hint = "see https://json-schema.org/understanding-json-schema (draft 2020-12)"
                if path and path[-1] == "type":
                    hint = f"a type is one of: {', '.join(_JSON_TYPES)}"
                raise ConfigError(
                    f"schema is not a valid JSON schema: at {where}: {exc.message}", field="schema", hint=hint
                ) from None
            self._validator = jsonschema.Draft202012Validator(schema)

    def check(self, record: Any) -> str | None:
        value = get_field(record, self.field)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                return f"'{self.field}' is not JSON: {exc.msg} at char {exc.pos}"
        if value is None:
            return f"field '{self.field}' is missing"
        if self._validator is not None:
            error = next(iter(self._validator.iter_errors(value)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                return f"schema violation at {where}: {error.message}"
        return None


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


class AnswerInContext(FilterBlock):
    """Reject extractive QA records whose answer does not occur in the context (normalised:
    case, punctuation and spacing are ignored)."""

    kind = "answer_in_context"

    def __init__(
        self,
        name: str | None = None,
        answer_field: str = "answer",
        context_field: str = "context",
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.answer_field, self.context_field = answer_field, context_field

    def check(self, record: Any) -> str | None:
        answer = get_field(record, self.answer_field)
        context = get_field(record, self.context_field)
        if not answer or not context:
            return f"'{self.answer_field}' or '{self.context_field}' is empty"
        if _normalise(str(answer)) not in _normalise(str(context)):
            return "answer does not appear in the context"
        return None
