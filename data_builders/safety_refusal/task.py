"""Task and record type of the ``safety_refusal`` builder: requests a risk policy forbids,
each with a calibrated refusal written from the policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fms_dgt import DataPoint, GenerationTask
from fms_dgt.registry import did_you_mean

from .policy import Risk, RiskGroup, load_policy

MAX_REQUESTS = 20
# the seed keys fms-dgt also accepts for a request and its refusal
ALIASES = {"question": "instruction", "answer": "response"}


@dataclass(kw_only=True)
class Refusal(DataPoint):
    """A request the policy forbids and its refusal. ``source`` is ``seed`` for seeds and
    ``synthetic`` for generated pairs; ``metadata`` names the risk and the policy."""

    instruction: str
    response: str | None = None
    source: str = "seed"
    metadata: dict[str, Any] = field(default_factory=dict)


class RiskPolicyRef(BaseModel):
    """The task's ``risk_policy`` key: a policy file and the risk in it (default: the first)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    risk: str | None = None


class SafetyRefusalTask(GenerationTask):
    """task.yaml keys (besides the usual ones):

    - ``risk_policy``: ``{path, risk}``; ``path`` is a policy file (relative to the
      task.yaml; ``${VAR}`` expanded), ``risk`` one of its risks (default: the first).
    - ``num_icl_examples``: example requests shown in each call (sets
      ``runner_config.seed_batch_size``; default: that setting, 3).
    - ``num_samples_per_batch``: new requests asked for in each call (1..20, default 5).
    """

    INPUT_DATA_TYPE = Refusal
    OUTPUT_DATA_TYPE = Refusal

    def __init__(
        self,
        *,
        risk_policy: RiskPolicyRef,
        num_icl_examples: int | None = None,
        num_samples_per_batch: int = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(risk_policy, dict):  # from Python (fms_dgt.load) rather than a task.yaml
            risk_policy = RiskPolicyRef.model_validate(risk_policy)
        if not 1 <= num_samples_per_batch <= MAX_REQUESTS:
            raise self.config_error(
                f"num_samples_per_batch must be between 1 and {MAX_REQUESTS}, got {num_samples_per_batch}",
                "num_samples_per_batch",
                hint="the requests asked for in each call; a small model keeps to 3 to 8",
            )
        if num_icl_examples is not None:
            if num_icl_examples < 1:
                raise self.config_error(
                    f"num_icl_examples must be at least 1, got {num_icl_examples}",
                    "num_icl_examples",
                    hint="the example requests shown in each call",
                )
            self.runner_config.seed_batch_size = num_icl_examples
        self.num_samples_per_batch = num_samples_per_batch
        self.policy_path = self._policy_path(risk_policy.path)
        self.policy: RiskGroup = load_policy(self.policy_path)
        self.risk: Risk = self._risk(risk_policy.risk)

    def _policy_path(self, given: str) -> Path:
        """A relative path starts at the task.yaml's folder or, failing that (as fms-dgt reads
        it), at the working directory."""
        path = Path(given).expanduser()
        if not path.is_absolute():
            here, cwd = self.base_dir / path, Path.cwd() / path
            path = cwd if not here.is_file() and cwd.is_file() else here
        if not path.is_file():
            raise self.config_error(
                f"risk policy file not found: {path}",
                "risk_policy",
                "path",
                hint="a YAML policy file (risk_group, risks: [...]); a relative path starts at the task.yaml's folder, or else at the working directory",
            )
        return path

    def _risk(self, name: str | None) -> Risk:
        risks = self.policy.risks
        if name is None:
            return risks[0]
        for risk in risks:
            if risk.risk == name.strip():
                return risk
        names = [r.risk for r in risks]
        raise self.config_error(
            f"risk '{name}' is not in {self.policy_path.name}",
            "risk_policy",
            "risk",
            hint=did_you_mean(name, names) or f"its risks: {', '.join(names)}",
        )

    @property
    def record_metadata(self) -> dict[str, Any]:
        """What every generated record says about the risk and the policy."""
        risk, group = self.risk, self.policy
        return {
            "risk": risk.risk,
            "risk_id": risk.risk_id,
            "risk_group": group.risk_group,
            "risk_group_id": group.risk_group_id,
            "policy_version": group.policy_version,
            "reason_denial": risk.reason_denial,
            "short_reply_type": risk.short_reply_type,
            "exception": risk.exception,
        }

    # ---- seeds ------------------------------------------------------------------------------
    def instantiate_input_example(self, **kwargs: Any) -> DataPoint:
        """``question``/``answer`` are accepted for ``instruction``/``response``."""
        for theirs, ours in ALIASES.items():
            if theirs in kwargs:
                value = kwargs.pop(theirs)
                kwargs.setdefault(ours, value)
        return super().instantiate_input_example(**kwargs)

    def _note_unknown_keys(self, raw: dict[str, Any], source: Any, keys: Any, what: str) -> None:
        super()._note_unknown_keys({k: v for k, v in raw.items() if k not in ALIASES}, source, keys, what)
