"""The preference formatter: records with a chosen and a rejected response as DPO-ready
preference pairs (the layout TRL's ``DPOTrainer`` and most preference trainers read)."""

from __future__ import annotations

from typing import Any

from fms_dgt.formatters.base import Formatter
from fms_dgt.formatters.templates import _compile, _render, _variables
from fms_dgt.registry import register_formatter


@register_formatter("preference", "dpo")
class PreferenceFormatter(Formatter):
    """``{"prompt": ..., "chosen": ..., "rejected": ...}`` per record.

    ``prompt``, ``chosen`` and ``rejected`` are Jinja templates over record fields (the
    defaults suit the ``preference`` builder's records). With ``chat: true`` each is a list
    of chat messages instead of a string: the prompt a user message (after ``system``, a
    template too, if given), chosen and rejected one assistant message each.
    """

    def __init__(
        self,
        prompt: str = "{{ instruction }}",
        chosen: str = "{{ chosen }}",
        rejected: str = "{{ rejected }}",
        chat: bool = False,
        system: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if system is not None and not chat:
            raise ValueError("system needs chat: true (a plain-text prompt has no system message)")
        self.chat = chat
        self._sources = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        if system is not None:
            self._sources["system"] = system
        self.templates = {k: _compile(v, k) for k, v in self._sources.items()}

    def fields_read(self) -> dict[str, set[str]]:
        return {k: _variables(v) for k, v in self._sources.items()}

    def format(self, record: dict[str, Any]) -> dict[str, Any]:
        text = {k: _render(t, record, k) for k, t in self.templates.items()}
        if not self.chat:
            return {"prompt": text["prompt"], "chosen": text["chosen"], "rejected": text["rejected"]}
        prompt = [{"role": "user", "content": text["prompt"]}]
        if "system" in text:
            prompt.insert(0, {"role": "system", "content": text["system"]})
        return {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": text["chosen"]}],
            "rejected": [{"role": "assistant", "content": text["rejected"]}],
        }
