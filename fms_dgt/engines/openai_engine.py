"""``openai``: any OpenAI-compatible endpoint (OpenAI, a vLLM server, Ollama, llama.cpp).

The engine maps requests to chat/completions bodies and responses back to ``LMResult``s;
the HTTP itself goes through one of the transports in ``engines/transports.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from fms_dgt.engines.admission import Admission
from fms_dgt.engines.base import DEFAULT_MAX_CONCURRENCY, Engine
from fms_dgt.engines.batch.options import BatchOptions
from fms_dgt.engines.concurrency import InFlightLimit
from fms_dgt.engines.pricing import Pricing
from fms_dgt.engines.rate_limits import WINDOW_SECONDS, RateLimits
from fms_dgt.engines.replicas import ReplicaSet
from fms_dgt.engines.transports import CHAT_PATH, COMPLETIONS_PATH, TRANSPORTS, Transport, error_message
from fms_dgt.engines.types import Constraint, LMRequest, LMResult
from fms_dgt.errors import ConfigError, FatalEngineError, RetryableEngineError

log = logging.getLogger("fms_dgt.engines.openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# the in-flight ceiling of an adaptive engine whose max_concurrency is not set: far above
# what builder calls usually keep in flight (the limit only grows while it holds them back)
ADAPTIVE_CEILING = 256

# requests in flight with the Batch API: each waits for a job, not for a server slot
BATCH_IN_FLIGHT = 1_000_000
BATCH_PRICE = 0.5  # the Batch API's share of the list price

PerMinute = Annotated[float, Field(gt=0)]


class OpenAIEngine(Engine):
    """An OpenAI-compatible HTTP endpoint.

    Args:
        base_url: API root including ``/v1``; default ``$OPENAI_BASE_URL`` or OpenAI's. A list
            of URLs serving the same model spreads requests over them (least in flight).
        api_key: the key itself; default ``$OPENAI_API_KEY``. Never logged or described.
        api_key_env: name of an environment variable holding the key (preferred in YAML,
            so the secret stays out of task files).
        model: model name; if empty, the first model the server lists under ``/models``.
        api: ``chat`` (default: message requests go to chat/completions, prompt requests to
            completions) or ``completions`` (only prompt requests are accepted).
        transport: ``fast`` (pooled aiohttp + orjson, the default), ``openai`` (the official
            client) or ``batch`` (OpenAI's Batch API: requests grouped into jobs, see ``batch``).
        request_timeout: HTTP timeout of one attempt; default the engine ``timeout``.
        extra_body: extra JSON fields merged into every request (``top_k``, ``min_p``...).
        max_tokens_field: ``max_tokens``, or ``max_completion_tokens`` for OpenAI reasoning models.
        constraint_style: how regex/choice constraints are sent: ``structured_outputs``
            (vLLM >= 0.10) or ``guided`` (older vLLM: ``guided_regex``/``guided_choice``).
        rpm: at most this many requests in any sliding minute (retries included).
        tpm: at most this many tokens (prompt + completion) in any sliding minute; a request
            is counted at its prompt estimate + ``max_tokens`` until its usage is known.
        adaptive_concurrency: lower the in-flight limit on 429 and raise it while answers
            flow (AIMD; ``max_concurrency`` is then the ceiling). False: a fixed limit.
        batch: settings of the Batch API transport (``BatchOptions``); giving them selects it.
        **kwargs: the ``Engine`` settings (max_concurrency, max_retries, timeout, cache...).
    """

    kind: ClassVar[str] = "openai"
    hosted: ClassVar[bool] = True  # a provider's models have known list prices (engines/pricing.py)
    # the providers' rate-limit window; tests shrink it (not a YAML key)
    rate_window: float = WINDOW_SECONDS

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | list[str] | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        api: Literal["chat", "completions"] = "chat",
        transport: Literal["fast", "openai", "batch"] | None = None,
        request_timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
        max_tokens_field: str = "max_tokens",
        constraint_style: Literal["structured_outputs", "guided"] = "structured_outputs",
        rpm: PerMinute | None = None,
        tpm: PerMinute | None = None,
        adaptive_concurrency: bool = True,
        batch: BatchOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        for field, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and not value > 0:  # the YAML check says so first, with its line
                raise ConfigError(f"{field} must be a number > 0, got {value!r}", field=field)
        self.rpm = float(rpm) if rpm is not None else None
        self.tpm = float(tpm) if tpm is not None else None
        self.adaptive_concurrency = adaptive_concurrency
        if adaptive_concurrency and self.max_concurrency_given is None:
            self.max_concurrency = ADAPTIVE_CEILING
        if api not in ("chat", "completions"):
            raise ConfigError(f"unknown api '{api}'", field="api", hint="use 'chat' or 'completions'")
        if batch is not None and transport not in (None, "batch"):
            raise ConfigError(
                f"a batch: block sends requests through the Batch API, not transport '{transport}'",
                field="transport",
                hint="remove one of the two",
            )
        transport = transport or "fast"
        if transport not in (*TRANSPORTS, "batch"):
            raise ConfigError(
                f"unknown transport '{transport}'", field="transport", hint="use 'fast', 'openai' or 'batch'"
            )
        if constraint_style not in ("structured_outputs", "guided"):
            raise ConfigError(f"unknown constraint_style '{constraint_style}'", field="constraint_style")
        if api_key_env is not None:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise ConfigError(f"environment variable {api_key_env} is not set", field="api_key_env")
        urls = base_url if isinstance(base_url, list) else [base_url] if base_url else []
        if not urls:
            urls = [os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL]
        self.base_urls = [_checked_url(str(u)) for u in urls]
        self.base_url = self.base_urls[0]
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.api = api
        self.transport_name = transport
        self.request_timeout = float(request_timeout) if request_timeout else float(self.timeout)
        self.extra_body = dict(extra_body or {})
        self.max_tokens_field = max_tokens_field
        self.constraint_style = constraint_style
        self.batch: BatchOptions | None = None
        if batch is not None or transport == "batch":
            self._use_batch(batch or BatchOptions())
        self._replicas: ReplicaSet[Transport] | None = None
        self._warned_n = False

    def _use_batch(self, options: BatchOptions) -> None:
        """Requests go through Batch API jobs: answers take up to the completion window, so
        an attempt may last that long, and nearly any number may wait at once."""
        if len(self.base_urls) > 1:
            raise ConfigError("the Batch API takes one base_url, not several", field="base_url")
        if self._rate_limited:
            raise ConfigError(
                "rpm and tpm limit the normal API; Batch API jobs have their own queue limits",
                field="rpm" if self.rpm is not None else "tpm",
                hint="remove rpm/tpm, or use transport: fast",
            )
        self.batch = options
        self.transport_name = "batch"
        self.adaptive_concurrency = False
        self.max_concurrency = self.max_concurrency_given or BATCH_IN_FLIGHT
        wait = options.window_seconds + 3600.0  # the window, and an hour to finalize and download
        self.retry = dataclasses.replace(self.retry, timeout=max(self.retry.timeout, wait))

    @property
    def _rate_limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def _make_admission(self) -> Admission:
        """The in-flight limit and the rate limits of the block. Adaptive unless turned off:
        it starts at ``max_concurrency`` when the block gives one (the user asked for that
        many: ramping up to it would idle a server that takes them) and at the usual 32
        otherwise, and finds the server's limit from its 429s."""
        ceiling = self.max_concurrency
        given = self.max_concurrency_given is not None
        start = ceiling if given or not self.adaptive_concurrency else min(ceiling, DEFAULT_MAX_CONCURRENCY)
        limit = InFlightLimit(start, ceiling, adaptive=self.adaptive_concurrency)
        rates = None
        if self.rpm is not None or self.tpm is not None:
            rates = RateLimits(
                self.rpm, self.tpm, window=self.rate_window, reports_sent=self.transport_name == "fast"
            )
        return Admission(limit, rates)

    @property
    def pricing(self) -> Pricing | None:
        """As for any engine; with the Batch API a listed price is halved (OpenAI bills batch
        tokens at half price). A block's own ``pricing:`` is taken as given."""
        listed = super().pricing
        if self.batch is None or listed is None or self._pricing is not None:
            return listed
        return Pricing(
            input_per_mtok=listed.input_per_mtok * BATCH_PRICE,
            output_per_mtok=listed.output_per_mtok * BATCH_PRICE,
        )

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(base_url=self.base_url, api=self.api, transport=self.transport_name)
        if len(self.base_urls) > 1:
            info["replicas"] = list(self.base_urls)
        return info

    def __repr__(self) -> str:  # the key must never appear in logs or tracebacks
        return f"OpenAIEngine(name={self.name!r}, model={self.model!r}, base_url={self.base_url!r})"

    def _transport(self, url: str, timeout: float, pool: int) -> Transport:
        if self.batch is not None:
            from fms_dgt.engines.batch.jobs import BatchTransport

            return BatchTransport(url, self._api_key, timeout, options=self.batch, journal_name=self.name)
        cls = TRANSPORTS[self.transport_name]
        return cls(url, self._api_key, timeout, pool, report_sent=self._rate_limited)

    async def _start(self) -> None:
        # a re-bind to a new event loop discards a transport tied to the old one
        pool = self.max_concurrency
        self._replicas = ReplicaSet(
            [self._transport(url, self.request_timeout, pool) for url in self.base_urls]
        )
        try:
            listings = [await self._probe(url, t) for url, t in zip(self.base_urls, self._replicas.members)]
            if not self.model:
                try:
                    self.model = str(listings[0]["data"][0]["id"])  # type: ignore[index]
                except (KeyError, IndexError, TypeError) as exc:
                    raise FatalEngineError(
                        f"no model configured and {self.base_url}/models did not name one ({exc!r})"
                    ) from None
        except BaseException:
            await self._close()  # the connection pools opened above, or they leak
            raise

    async def _probe(self, url: str, transport: Transport) -> dict[str, Any] | None:
        """Ask the server which models it serves before the first request: a server that
        cannot be reached stops the run now (not after minutes of retries); a wrong path or
        model name is said once, plainly, instead of only in failure records."""
        try:
            listing = await transport.get("/models")
        except FatalEngineError as exc:
            hint = ""
            if exc.status == 404:
                hint = " (OpenAI-compatible servers usually serve under /v1: is it missing from base_url?)"
            elif exc.status in (401, 403):
                hint = " (check the API key; api_key_env names the variable that holds it)"
            log.warning("%s: %s/models answered %s%s", self.name, url, exc, hint)
            return None
        except RetryableEngineError as exc:
            if "connection failed" in str(exc):
                raise FatalEngineError(
                    f"cannot reach {url}: {exc}. Is the server running, and are the host and port right?"
                ) from None
            log.warning("%s: %s/models did not answer (%s); trying requests anyway", self.name, url, exc)
            return None
        served = [str(m.get("id")) for m in listing.get("data") or [] if isinstance(m, dict)]
        if self.model and served and self.model not in served:
            log.warning(
                "%s: model '%s' is not among the models %s serves (%s); requests may fail",
                self.name,
                self.model,
                url,
                ", ".join(served[:10]),
            )
        return listing

    async def reachability_problem(self) -> str | None:
        """For ``--validate``: why this engine's server cannot be used, or None. Opens and
        closes its own connections (no model is asked anything)."""
        for url in self.base_urls:
            transport = self._transport(url, min(self.request_timeout, 10.0), 1)
            try:
                await self._probe(url, transport)
            except FatalEngineError as exc:
                return str(exc)
            finally:
                await transport.aclose()
        return None

    async def chat_tokenizer(self) -> Any | None:
        """The tokenizer of the model folder the server serves, loaded with transformers,
        when that folder is on this machine (``model`` names a folder, as for a server
        started with ``--model /path``); None otherwise."""
        folder = await asyncio.to_thread(self._local_model_folder)
        return await asyncio.to_thread(local_tokenizer, folder) if folder else None

    def _local_model_folder(self) -> str | None:
        return self.model if self.model and os.path.isdir(self.model) else None

    async def _close(self) -> None:
        if self._replicas is not None:
            replicas, self._replicas = self._replicas, None
            for transport in replicas.members:
                await transport.aclose()

    async def _generate_once(self, request: LMRequest) -> LMResult:
        path, body = self.build_body(request)
        replicas = self._replicas
        if replicas is None:
            raise FatalEngineError("engine is closed")
        with replicas.use() as transport:
            data = await transport.post(path, body)
        return self.parse_response(data, chat=path == CHAT_PATH, n=request.sampling.n)

    # ---- request/response mapping (public so tests and other engines can reuse it) ----
    def build_body(self, request: LMRequest) -> tuple[str, dict[str, Any]]:
        """The endpoint path and JSON body for ``request``."""
        p = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            self.max_tokens_field: p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
        }
        if p.n != 1:
            body["n"] = p.n
        if p.stop:
            body["stop"] = p.stop
        if p.seed is not None:
            body["seed"] = p.seed
        if request.messages is not None:
            if self.api == "completions":
                raise FatalEngineError(
                    "this engine is configured with api: completions; send a prompt, not messages"
                )
            path = CHAT_PATH
            body["messages"] = request.messages
        else:
            path = COMPLETIONS_PATH
            body["prompt"] = request.prompt
        if request.constraint is not None:
            self._add_constraint(body, request.constraint)
        if self.extra_body:
            body.update(self.extra_body)
        return path, body

    def _add_constraint(self, body: dict[str, Any], c: Constraint) -> None:
        if c.json_schema is not None:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", str(c.json_schema.get("title") or "output"))[:64]
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": c.json_schema, "strict": True},
            }
        elif self.constraint_style == "guided":
            if c.regex is not None:
                body["guided_regex"] = c.regex
            else:
                body["guided_choice"] = c.choices
        elif c.regex is not None:
            body["structured_outputs"] = {"regex": c.regex}
        else:
            body["structured_outputs"] = {"choice": c.choices}

    def parse_response(self, data: dict[str, Any], *, chat: bool, n: int = 1) -> LMResult:
        """Texts, finish reasons, usage and model from a (chat) completion body."""
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise RetryableEngineError(f"response has no choices: {error_message(repr(data).encode())[:200]}")
        if len(choices) > 1:
            choices = sorted(choices, key=lambda ch: ch.get("index", 0))
        texts: list[str] = []
        reasons: list[str | None] = []
        try:
            for ch in choices:
                if chat:
                    msg = ch["message"]
                    text = msg.get("content")
                    if text is None:  # a refusal or a tool call: still never None
                        text = msg.get("refusal") or ""
                else:
                    text = ch["text"] or ""
                texts.append(text)
                reasons.append(ch.get("finish_reason"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise RetryableEngineError(f"malformed choice in response: {exc!r}") from None
        if len(texts) < n and not self._warned_n:
            self._warned_n = True
            log.warning(
                "%s: asked for n=%d but the server returned %d choice(s); it may not support n",
                self.name,
                n,
                len(texts),
            )
        usage = data.get("usage") or {}
        return LMResult(
            texts=texts,
            finish_reasons=reasons,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            model=data.get("model") or self.model,
        )


@functools.cache
def local_tokenizer(folder: str) -> Any | None:
    """The transformers tokenizer saved in ``folder`` (local files only), or None when
    transformers is not installed or the folder holds no tokenizer (said in the log)."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        log.warning("transformers is not installed: the tokenizer in %s cannot be read", folder)
        return None
    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # a folder without tokenizer files, a damaged file: no tokenizer
        log.warning("no tokenizer could be loaded from %s: %s", folder, exc)
        return None


def _checked_url(url: str) -> str:
    """An http(s) URL with a host, else a config error now (not minutes of retries later)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"base_url '{url}' is not an http(s) URL",
            field="base_url",
            hint="e.g. http://127.0.0.1:8000/v1 or https://api.openai.com/v1",
        )
    return url
