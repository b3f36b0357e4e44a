"""The data that crosses the engine boundary: requests, sampling parameters, constraints,
results. Plain dataclasses so builders, caches and datastores can serialise them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict
from typing_extensions import TypedDict


@dataclass
class SamplingParams:
    """How to sample. Defaults are chosen for data generation (not vLLM's max_tokens=16).

    A YAML ``sampling:`` section is a ``SamplingOptions`` mapping: some of these fields."""

    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 1.0
    stop: list[str] | None = None
    n: int = 1
    seed: int | None = None

    def merged(self, **overrides: Any) -> SamplingParams:
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _options_type() -> Any:
    """``SamplingParams``' fields as a TypedDict with every key optional, so a YAML
    ``sampling:`` mapping is checked key by key (an unknown key such as ``temperture`` is an
    error with a did-you-mean; a word for a number is an error) and stays a mapping of only
    the keys given, which callers layer over their own defaults."""
    from pydantic import with_config

    hints = typing.get_type_hints(SamplingParams)
    options = TypedDict("SamplingOptions", hints, total=False)  # type: ignore[misc]
    return with_config(ConfigDict(extra="forbid"))(options)


if TYPE_CHECKING:
    SamplingOptions = dict[str, Any]
else:
    SamplingOptions = _options_type()


@dataclass
class Constraint:
    """Restrict what the model may emit. Exactly one of the three fields is set.

    The engine checks every answer against it and resends one that breaks it, unless the
    request says ``keep_invalid`` (see ``LMRequest``)."""

    json_schema: dict[str, Any] | None = None
    regex: str | None = None
    choices: list[str] | None = None

    def __post_init__(self) -> None:
        given = [x for x in (self.json_schema, self.regex, self.choices) if x is not None]
        if len(given) != 1:
            raise ValueError("a Constraint needs exactly one of json_schema, regex or choices")

    @classmethod
    def from_model(cls, model: type) -> Constraint:
        """A JSON-schema constraint from a pydantic model class."""
        return cls(json_schema=model.model_json_schema())  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class LMRequest:
    """One call to a model: chat ``messages`` or a raw ``prompt`` (not both).

    ``params`` left out (None) means the sampling configured for the engine block the
    request is sent to (its YAML ``sampling:``, with an ``--engine`` override's on top): a
    builder never has to pass it along, and cannot forget to.

    ``keep_invalid``: an answer that breaks ``constraint`` comes back as it is, at once
    (``LMResult.invalid`` says what is wrong with it), instead of being resent and then
    failing the request: for builders that keep such answers as rejections with their raw
    text (a greedy model would only repeat it). The constraint still guides decoding."""

    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    params: SamplingParams | None = None
    constraint: Constraint | None = None
    keep_invalid: bool = False
    # free-form lineage the builder wants back on failure records (request_idx, seed ids, ...)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("an LMRequest needs exactly one of messages or prompt")

    @property
    def sampling(self) -> SamplingParams:
        """The sampling this request is sent with (the defaults until an engine fills it)."""
        return self.params if self.params is not None else SamplingParams()

    def with_defaults(self, params: SamplingParams) -> LMRequest:
        """This request with ``params`` if it has none of its own."""
        return self if self.params is not None else dataclasses.replace(self, params=params)

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "prompt": self.prompt,
            "params": dataclasses.asdict(self.sampling),
            "constraint": self.constraint.to_dict() if self.constraint else None,
            "metadata": self.metadata,
        }

    def cache_key(self, engine_kind: str, model: str) -> str:
        """Content address of this request (excludes metadata, which is lineage only)."""
        body = self.to_dict()
        body.pop("metadata")
        body["engine"] = engine_kind
        body["model"] = model
        if self.keep_invalid:  # its cached answer may break the constraint
            body["keep_invalid"] = True
        blob = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class LMResult:
    """What came back. ``error`` is set (and ``texts`` empty) when every attempt failed;
    builders check ``ok`` and never receive ``None`` as text."""

    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    attempts: int = 1
    cached: bool = False
    # parsed JSON objects when the request had a json_schema constraint
    parsed: list[Any] | None = None
    model: str | None = None
    # what breaks the constraint, when a ``keep_invalid`` request got such an answer back
    invalid: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The first completion (raises if the request failed, rather than returning None)."""
        if not self.ok or not self.texts:
            raise ValueError(f"request failed: {self.error}")
        return self.texts[0]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class EngineStats:
    """Counters an engine keeps; summed into task_results and the progress display."""

    requests: int = 0
    cached: int = 0
    failed: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # tokens of answers not served from the cache (what budgets count) and what they cost
    billed_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: EngineStats) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_dict(self) -> dict[str, int | float]:
        out: dict[str, int | float] = dataclasses.asdict(self)
        out["cost_usd"] = round(self.cost_usd, 6)
        return out
