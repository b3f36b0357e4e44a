"""The task.yaml examples of the transformation catalogue in docs/builders.md are valid: each
names a builder whose task accepts its keys and values (data files aside)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from fms_dgt.config.components import check_args
from fms_dgt.config.task_file import RUNTIME_TASK_ARGS
from fms_dgt.index import default_builder_paths, import_builder, index_builders
from tests.catalogue.conftest import REPO

IDENTITY = {"task_name", "task_description", "created_by", "data_builder"}


def _examples() -> list[dict[str, Any]]:
    text = (REPO / "docs/builders.md").read_text()
    section = text[text.index("## Transformation and judging catalogue") : text.index("## The YAML")]
    blocks = [yaml.safe_load(b) for k, b in re.findall(r"```(\w*)\n(.*?)```", section, re.S) if k == "yaml"]
    return [b for b in blocks if isinstance(b, dict) and "data_builder" in b]


EXAMPLES = _examples()


def test_every_builder_has_a_documented_task() -> None:
    names = {e["data_builder"] for e in EXAMPLES}
    assert names == {
        "text_generation",
        "chat_generation",
        "inference",
        "embeddings",
        "evol_complexity",
        "evol_quality",
        "instruction_backtranslation",
        "quality_scorer",
        "complexity_scorer",
        "ultrafeedback",
        "prometheus_eval",
        "magpie_tag",
        "rater",
        "text_classification",
        "preference",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["task_name"] for e in EXAMPLES])
def test_documented_task_is_valid(example: dict[str, Any], tmp_path: Any) -> None:
    builder = import_builder(index_builders(default_builder_paths())[example["data_builder"]])
    task_cls = builder.TASK_TYPE
    args = {k: v for k, v in example.items() if k not in IDENTITY}
    args["data"] = []  # the files the examples name are the reader's
    checked = check_args(task_cls, args, doc=None, key=(), what="task", reserved=RUNTIME_TASK_ARGS | IDENTITY)
    identity = {k: example[k] for k in IDENTITY}
    task_cls(**identity, **checked, output_dir=tmp_path)  # the values' own checks
