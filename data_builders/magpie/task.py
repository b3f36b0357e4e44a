"""The ``magpie`` builder's task and records: chats whose user turns the model wrote itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from fms_dgt import ConfigError, DataPoint, GenerationTask
from fms_dgt.registry import did_you_mean

MAX_TURNS = 20
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


@dataclass(kw_only=True)
class ChatRecord(DataPoint):
    """One chat: the first user message and answer, and every message (OpenAI format)."""

    instruction: str
    response: str
    messages: list[dict[str, str]]


class MagpieTask(GenerationTask):
    """Instructions sampled from a chat model given only its template's pre-query prefix.

    Keys: ``turns`` (user/assistant exchanges per chat), ``system_prompt`` (a Jinja system
    message written into the template before the user turn: it steers what users ask; it
    sees the sampler values), ``pre_query_template`` (the prefix, for engines that cannot
    give the model's tokenizer), ``tokenizer`` (a local folder whose tokenizer has the
    model's chat template, for such engines), ``instruction_max_tokens`` and
    ``instruction_temperature`` (sampling of the user turns).
    """

    INPUT_DATA_TYPE = ChatRecord
    OUTPUT_DATA_TYPE = ChatRecord

    def __init__(
        self,
        *,
        turns: int = 1,
        system_prompt: str | None = None,
        pre_query_template: str | None = None,
        tokenizer: str | None = None,
        instruction_max_tokens: int = 128,
        instruction_temperature: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= turns <= MAX_TURNS:
            raise self.error(f"'turns' must be between 1 and {MAX_TURNS}, got {turns}", "turns")
        if instruction_max_tokens < 8:
            raise self.error(
                f"'instruction_max_tokens' must be at least 8, got {instruction_max_tokens}",
                "instruction_max_tokens",
            )
        if not 0 <= instruction_temperature <= 2:
            raise self.error(
                f"'instruction_temperature' must be between 0 and 2, got {instruction_temperature}",
                "instruction_temperature",
            )
        if pre_query_template is not None and not pre_query_template.strip():
            raise self.error("'pre_query_template' is empty", "pre_query_template")
        self.turns = turns
        self.pre_query_template = pre_query_template
        self.instruction_max_tokens = instruction_max_tokens
        self.instruction_temperature = instruction_temperature
        self.tokenizer = self._tokenizer_folder(tokenizer) if tokenizer else None
        self.system_source = system_prompt or ""
        self.system_template = self._template(system_prompt, "system_prompt") if system_prompt else None

    def error(self, message: str, *keys: Any, hint: str | None = None) -> ConfigError:
        """A config error at ``keys`` of the task.yaml."""
        if self.yaml_doc is not None:
            return self.yaml_doc.error(message, *keys, hint=hint)
        return ConfigError(message, field=".".join(map(str, keys)) or None, hint=hint)

    def _tokenizer_folder(self, value: str) -> str:
        folder = Path(value).expanduser()
        folder = folder if folder.is_absolute() else self.base_dir / folder
        if not folder.is_dir():
            raise self.error(
                f"tokenizer folder '{value}' does not exist",
                "tokenizer",
                hint="give a local folder holding the model's tokenizer_config.json",
            )
        if not any((folder / name).is_file() for name in ("tokenizer_config.json", "tokenizer.json")):
            raise self.error(
                f"'{value}' holds no tokenizer (no tokenizer_config.json or tokenizer.json)", "tokenizer"
            )
        return str(folder)

    def _template(self, source: str, key: str) -> jinja2.Template:
        try:
            template = _ENV.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise self.error(f"'{key}' is not a valid Jinja template: {exc.message}", key) from None
        provided = {"task_description", *(self.samplers.specs if self.samplers else {})}
        unknown = sorted(jinja2.meta.find_undeclared_variables(_ENV.parse(source)) - provided)
        if unknown:
            raise self.error(
                f"'{key}' uses '{unknown[0]}', which nothing provides",
                key,
                hint=did_you_mean(unknown[0], provided) or f"available: {', '.join(sorted(provided))}",
            )
        return template

    def system_message(self, samples: dict[str, Any]) -> str | None:
        if self.system_template is None:
            return None
        return self.system_template.render(**samples, task_description=self.task_description).strip() or None

    def load_seed_examples(self) -> list[DataPoint]:
        """Magpie needs no seeds: the model writes the instructions."""
        inline, store = self._seed_configs
        if inline or store is not None:
            raise self.error(
                "magpie takes no seed examples: the model writes the instructions itself",
                "seed_examples" if inline else "seed_datastore",
                hint="remove them; system_prompt and samplers steer what is asked",
            )
        self.seed_examples = []
        return []

    def output_to_example(self, record: DataPoint) -> DataPoint | None:
        return None  # no in-context examples: nothing to keep in the pool
