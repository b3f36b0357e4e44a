"""A model's chat format as magpie needs it: the text its chat template puts before a user
message (the pre-query prefix, after any conversation so far), and the template's tokens
that must never appear inside a record.

How the prefix is derived from a tokenizer: the template renders the conversation so far
plus a user message holding a sentinel (characters from Unicode's private-use area, which no
template touches); everything before the sentinel is the prefix, everything after it is what
ends a user turn. For SmolLM2 (ChatML) and no conversation yet::

    <|im_start|>system\\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\\n<|im_start|>user\\n

The model, continuing that text, writes what a user would ask, and stops at its end-of-turn
token. Without a tokenizer, the task's ``pre_query_template`` is the prefix as written (one
turn only: later turns need the template to write the conversation so far).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SENTINEL = "\ue000dgt-query\ue001"
_ROLE_LABEL = re.compile(r"(?im)^[ \t]*(?:user|assistant|system|human|bot)[ \t]*(?::|$)")
# the <|...|> family of template tokens (ChatML, Llama 3, Phi...): never natural text, so
# one is a leak whatever model wrote it
_PIPE_TOKEN = re.compile(r"<\|[^<>|\s]{1,40}\|>")
_PIPE_AT_START = re.compile(r"^(?:" + _PIPE_TOKEN.pattern + r")")
_PIPE_AT_END = re.compile(r"(?:" + _PIPE_TOKEN.pattern + r")$")
# what looks like a template token in a hand-written pre_query_template: <|...|>, <word>,
# [WORD] and [/WORD]
_TOKEN_LIKE = re.compile(r"<\|[^<>|]{1,40}\|>|<[A-Za-z_][\w-]{0,30}>|\[/?[A-Z_]{2,20}\]")


class TemplateError(ValueError):
    """The chat template cannot be used for magpie (said in the message)."""


@dataclass
class ChatFormat:
    """How to write a pre-query prefix, and what must not leak into records.

    ``markers``: strings that belong to the template, never to a message: the tokenizer's
    special tokens and the visible parts of the template's role headers that are not plain
    words (``[INST]``, ``### Instruction:``). ``stops``: strings that end an instruction."""

    source: str  # "engine", "tokenizer" or "pre_query_template": where the format came from
    tokenizer: Any = None
    pre_query_template: str | None = None
    markers: list[str] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)
    strip_bos: str | None = None  # a BOS the tokenizer adds itself, so the prefix leaves it out

    @property
    def multi_turn(self) -> bool:
        """Whether follow-up turns can be written (the whole template is known)."""
        return self.tokenizer is not None

    # ---- building -------------------------------------------------------------------
    @classmethod
    def from_tokenizer(cls, tokenizer: Any, source: str, system: str | None = None) -> ChatFormat:
        """The format of ``tokenizer``'s chat template; TemplateError if it has none or it
        cannot write a user turn (with ``system``, if given)."""
        if not getattr(tokenizer, "chat_template", None):
            raise TemplateError("the tokenizer has no chat template")
        fmt = cls(source=source, tokenizer=tokenizer)
        history = [{"role": "system", "content": system}] if system else []
        before, after = fmt._split(history)
        # a two-turn rendering tells the assistant's header and the end of its turn
        two = fmt._render(
            [
                *history,
                {"role": "user", "content": SENTINEL + "1"},
                {"role": "assistant", "content": SENTINEL + "2"},
                {"role": "user", "content": SENTINEL + "3"},
            ]
        )
        pieces = [after]
        try:
            between_user_and_assistant = two.split(SENTINEL + "1", 1)[1].split(SENTINEL + "2", 1)[0]
            between_assistant_and_user = two.split(SENTINEL + "2", 1)[1].split(SENTINEL + "3", 1)[0]
            pieces += [between_user_and_assistant, between_assistant_and_user]
        except IndexError:
            pass  # a template that drops earlier turns: the first turn's pieces still hold
        specials = _special_tokens(tokenizer)
        fmt.markers = sorted({*specials, *_visible_markers(pieces, specials)}, key=len, reverse=True)
        fmt.stops = sorted({p.strip() for p in pieces if p.strip()} | set(_visible_markers(pieces, specials)))
        bos = getattr(tokenizer, "bos_token", None)
        if bos and before.startswith(bos) and _adds_bos(tokenizer):
            fmt.strip_bos = bos
        return fmt

    @classmethod
    def from_pre_query_template(cls, text: str) -> ChatFormat:
        markers = sorted(set(_TOKEN_LIKE.findall(text)), key=len, reverse=True)
        return cls(source="pre_query_template", pre_query_template=text, markers=markers, stops=list(markers))

    # ---- using ---------------------------------------------------------------------
    def prefix(self, history: Sequence[dict[str, Any]]) -> str:
        """The text after which the model writes the next user message."""
        if self.tokenizer is None:
            assert self.pre_query_template is not None
            if any(m["role"] != "system" for m in history):
                raise TemplateError("follow-up turns need the model's chat template (a tokenizer)")
            return self.pre_query_template
        before, _ = self._split(history)
        if self.strip_bos and before.startswith(self.strip_bos):
            before = before[len(self.strip_bos) :]
        return before

    def clean(self, text: str) -> str:
        """``text`` without template pieces around it: leading and trailing markers (and
        ``<|...|>`` tokens) and a leading role label (``user\\n``, ``User:``) are removed."""
        out = text.strip()
        changed = True
        while changed and out:
            changed = False
            for marker in self.markers:
                if out.startswith(marker):
                    out, changed = out[len(marker) :].lstrip(), True
                if out.endswith(marker):
                    out, changed = out[: -len(marker)].rstrip(), True
            for pattern in (_PIPE_AT_START, _ROLE_LABEL):
                found = pattern.match(out)
                if found:
                    out, changed = out[found.end() :].lstrip(), True
            found = _PIPE_AT_END.search(out)
            if found:
                out, changed = out[: found.start()].rstrip(), True
        return out

    def leak(self, text: str) -> str | None:
        """The template piece ``text`` still holds (a marker, a ``<|...|>`` token, a role
        label starting a line), or None."""
        for marker in self.markers:
            if marker in text:
                return marker
        found = _PIPE_TOKEN.search(text) or _ROLE_LABEL.search(text)
        return found.group(0).strip() if found else None

    # ---- internals -------------------------------------------------------------------
    def _render(self, messages: list[dict[str, Any]]) -> str:
        try:
            return str(
                self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
            )
        except Exception as exc:  # jinja2's TemplateError, or a template's raise_exception
            raise TemplateError(f"the chat template cannot write this conversation: {exc}") from None

    def _split(self, history: Sequence[dict[str, Any]]) -> tuple[str, str]:
        text = self._render([*history, {"role": "user", "content": SENTINEL}])
        if SENTINEL not in text:
            raise TemplateError("the chat template does not write the user's message")
        before, after = text.split(SENTINEL, 1)
        return before, after


def _special_tokens(tokenizer: Any) -> set[str]:
    tokens = {str(t) for t in getattr(tokenizer, "all_special_tokens", None) or []}
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    tokens |= {str(t.content) for t in decoder.values() if getattr(t, "special", False)}
    return {t for t in tokens if t.strip()}


def _visible_markers(pieces: Sequence[str], specials: set[str]) -> list[str]:
    """Lines of the template's own text between messages, special tokens removed, that are
    not plain words: ``[INST]``, ``### Response:``. (``user``/``assistant`` lines are role
    labels, found by their own rule.)"""
    found: list[str] = []
    pattern = "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True))
    for piece in pieces:
        rest = re.sub(pattern, "\n", piece) if pattern else piece
        for line in rest.splitlines():
            line = line.strip()
            if line and not re.fullmatch(r"[\w ]+:?", line) and SENTINEL not in line:
                found.append(line)
    return found


def _adds_bos(tokenizer: Any) -> bool:
    try:
        ids = tokenizer.encode("a")
    except Exception:
        return False
    return bool(ids) and ids[0] == getattr(tokenizer, "bos_token_id", None)
