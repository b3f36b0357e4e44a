"""Risk policy files: what a refusal is written from.

The format is IBM fms-dgt's (``data/public/safety/resources/policies/*.yaml``)::

    risk_group: cybersecurity_risks
    risk_group_id: 11
    description: Requests that help an attacker ...
    policy_version: v1.0
    risks:
      - risk: cyber_security_exploits
        risk_id: 11.2
        description: Requests to use software exploits ...
        reason_denial: CYBERSECURITY_EXPLOIT
        short_reply_type: EXPLICIT_REFUSAL
        exception: CYBERSECURITY_EXPLOIT_EXCEPTION
        policy:
          reply_cannot_contain: [Code to run exploits, ...]
          reply_may_contain: [Polite denial ..., ...]

A mistake in the file is a located error in that file (its line and key), like one in a
task.yaml. Text values are stripped (the shipped files have trailing spaces).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fms_dgt.config.messages import validated
from fms_dgt.config.yaml_loader import load_yaml

# a number in YAML (11, 11.2) or text: kept as the file gives it
Identifier = str | int | float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, list):
            return [v.strip() if isinstance(v, str) else v for v in value]
        return value


class ReplyPolicy(_Strict):
    """What a reply to a request of this risk may and must not contain."""

    reply_cannot_contain: list[str] = Field(default_factory=list)
    reply_may_contain: list[str] = Field(default_factory=list)


class Risk(_Strict):
    risk: str = Field(min_length=1)
    risk_id: Identifier | None = None
    description: str = Field(min_length=1)
    reason_denial: str = ""
    short_reply_type: str = ""
    exception: str | None = None
    policy: ReplyPolicy = Field(default_factory=ReplyPolicy)


class RiskGroup(_Strict):
    risk_group: str = Field(min_length=1)
    risk_group_id: Identifier | None = None
    description: str = ""
    policy_version: Identifier = ""
    risks: list[Risk] = Field(min_length=1)


def load_policy(path: Path) -> RiskGroup:
    """The policy file at ``path``; any mistake in it is a ConfigError at its line."""
    doc = load_yaml(path)
    return validated(RiskGroup, doc.data, doc, what="a risk policy (risk_group, risks, ...)")


def words(label: str) -> str:
    """``CYBERSECURITY_EXPLOIT`` -> ``cybersecurity exploit`` (labels as prompt text)."""
    return " ".join(label.replace("_", " ").split()).lower()
