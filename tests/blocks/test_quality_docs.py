"""docs/quality.md as written: every block its YAML examples declare builds through the
registry with those arguments, and the metrics examples give the values shown."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

import fms_dgt.blocks  # noqa: F401 - registers the built-in blocks
from fms_dgt.config.components import build_component
from fms_dgt.registry import blocks as block_registry
from tests.core.helpers import REPO
from tests.support.judge_engine import JudgeEngine

DOC = (REPO / "docs" / "quality.md").read_text()


def _specs() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in block_registry:
                found.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for body in re.findall(r"```yaml\n(.*?)```", DOC, re.S):
        walk(yaml.safe_load(body))
    return found


SPECS = _specs()


def test_every_block_type_is_documented() -> None:
    documented = {s["type"] for s in SPECS}
    assert set(fms_dgt.blocks.BUILTIN_BLOCKS) <= documented


@pytest.mark.parametrize("spec", SPECS, ids=[s["name"] for s in SPECS])
def test_documented_block_builds(spec: dict[str, Any]) -> None:
    spec = dict(spec)
    runtime = {}
    if "engine" in spec:
        spec.pop("engine")
        runtime["engine"] = JudgeEngine()
    block = build_component(block_registry, spec, runtime_kwargs=runtime)
    assert block.name == spec["name"]


def test_metrics_examples() -> None:
    from fms_dgt.metrics import exact_match, rouge_l, token_f1

    assert round(rouge_l("the cat sat on the mat", "the cat is on the mat").f1, 3) == 0.833
    assert exact_match("The Eiffel Tower.", ["eiffel tower"]) == 1.0
    assert round(token_f1("Paris, France", "Paris"), 3) == 0.667
