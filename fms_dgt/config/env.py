"""``${VAR}`` expansion in configuration values, and the one redactor of secrets.

Why one module: a value taken from the environment may be a credential, so everything the
framework writes about a run (logs, errors, the task card, failure records) must pass
through the same redactor that knows which values came from the environment. Expansion
remembers each expanded value; ``redact`` removes them from text; ``redacted_config``
additionally masks values of secret-looking keys (``api_key: sk-...``) written literally.

``$${`` stands for a literal ``${``. An unset variable without a default is a config error
naming the field, never a silent empty string sent as a credential; the format's folder
variables ``DGT_DATA_DIR`` and ``DGT_OUTPUT_DIR`` default to ``./data`` and ``./output``.
Those two name folders, not credentials, and are not redacted: an error about a missing
``${DGT_DATA_DIR}/seeds.jsonl`` must show the path that was looked at.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from fms_dgt.errors import ConfigError

if TYPE_CHECKING:
    from fms_dgt.config.yaml_loader import YamlDoc

Key = tuple[Any, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEYS = ("api_key", "token", "password", "secret")

# values taken from the environment; redacted from logs and outputs
SECRET_VALUES: set[str] = set()

# the task.yaml format's own folders, with the defaults its documentation gives: a task file
# written for it (``${DGT_DATA_DIR}/seeds.jsonl``) works without setting them. Relative
# defaults are taken from the working directory, as that format does.
BUILTIN_DEFAULTS: dict[str, str] = {"DGT_DATA_DIR": "data", "DGT_OUTPUT_DIR": "output"}


def builtin_default(name: str) -> str | None:
    """The documented default of a ``DGT_*`` folder variable (an absolute path), or None."""
    value = BUILTIN_DEFAULTS.get(name)
    return None if value is None else os.path.abspath(value)


def expand_env(value: Any, *, doc: YamlDoc | None = None, key: Key = ()) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in strings (recursively). A variable that is
    unset and has no default is a config error naming the field. Expanded values are
    remembered so logs and the task card can redact them."""
    if isinstance(value, str):
        return _expand_string(value, doc, key) if "${" in value else value
    if isinstance(value, dict):
        return {k: expand_env(v, doc=doc, key=(*key, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, doc=doc, key=(*key, i)) for i, v in enumerate(value)]
    return value


def _expand_string(value: str, doc: YamlDoc | None, key: Key) -> str:
    """Expand every ``${...}`` in ``value``. Anything else that starts with ``${`` is
    malformed and an error: left as it is, a typo such as ``${API KEY}`` would silently send
    the literal text as a credential."""

    def fail(msg: str, hint: str) -> ConfigError:
        if doc is not None:
            return doc.error(msg, *key, hint=hint)
        return ConfigError(msg, field=".".join(map(str, key)) or None, hint=hint)

    out: list[str] = []
    pos = 0
    while True:
        start = value.find("${", pos)
        if start < 0:
            out.append(value[pos:])
            return "".join(out)
        if start > pos and value[start - 1] == "$":  # "$${": an escaped literal
            out.append(value[pos : start - 1] + "${")
            pos = start + 2
            continue
        out.append(value[pos:start])
        match = _ENV.match(value, start)
        if match is None:
            end = value.find("}", start)
            shown = value[start : end + 1] if 0 <= end - start < 60 else value[start : start + 20]
            raise fail(
                f"malformed environment reference '{shown}'",
                "write ${NAME} or ${NAME:-default} (NAME: letters, digits, '_'), or $${ for a literal ${",
            )
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            if os.environ[name] and name not in BUILTIN_DEFAULTS:  # a folder is no secret
                SECRET_VALUES.add(os.environ[name])
            out.append(os.environ[name])
        elif default is not None:
            out.append(default)
        elif builtin_default(name) is not None:
            out.append(str(builtin_default(name)))
        else:
            raise fail(
                f"environment variable ${{{name}}} is not set",
                f"export {name}=... or write ${{{name}:-default}}",
            )
        pos = match.end()


def redact(text: str) -> str:
    """Remove every environment-provided value from ``text``."""
    for secret in SECRET_VALUES:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def redact_all(value: Any) -> Any:
    """``value`` with ``redact`` applied to every string in it (dicts and lists walked).
    For what the framework itself writes about a run (errors, reasons, requests), never
    for generated records, whose text is the user's data."""
    if not SECRET_VALUES:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_all(k): redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_all(v) for v in value]
    return value


def redacted_config(value: Any) -> Any:
    """A configuration as written (``${VAR}`` kept unexpanded) for the task card: every
    environment value removed, and literal values of secret-looking keys masked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: ("***" if is_secret_key(k) and isinstance(v, str) and "${" not in v else redacted_config(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redacted_config(v) for v in value]
    return value


def is_secret_key(key: Any) -> bool:
    """Keys whose literal values are credentials (``api_key``, ``openai_api_key``, ``token``...)."""
    k = str(key).lower()
    return k in _SECRET_KEYS or k.endswith("_api_key")
