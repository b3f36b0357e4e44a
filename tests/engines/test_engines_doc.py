"""docs/engines.md matches the code: every key its YAML examples set is an argument the
engine accepts, and its command lines parse."""

from __future__ import annotations

import inspect
import re
import shlex

import pytest
import yaml

from fms_dgt.registry import engines
from fms_dgt.run import build_parser
from tests.core.helpers import REPO

DOC = (REPO / "docs" / "engines.md").read_text()


def _fenced(lang: str) -> list[str]:
    return [body for kind, body in re.findall(r"```(\w*)\n(.*?)```", DOC, re.S) if kind == lang]


def _accepted(cls: type) -> set[str]:
    """Keyword arguments a class accepts through its own and its bases' ``__init__``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                names.add(p.name)
    return names


def _engine_examples() -> list[dict]:
    examples = []
    for body in _fenced("yaml"):
        data = yaml.safe_load(body)
        if "blocks" in data:
            examples += data["blocks"]
        if "engines" in data:
            examples.append(data["engines"])
    return examples


def test_every_engine_kind_has_an_example() -> None:
    kinds = {e["type"] for e in _engine_examples()}
    assert {"vllm", "vllm-server", "openai"} <= kinds


@pytest.mark.parametrize("example", _engine_examples(), ids=lambda e: e["type"])
def test_example_keys_are_engine_arguments(example: dict) -> None:
    import fms_dgt.engines  # noqa: F401  (registers the built-in engines)

    cls = engines.get(example["type"])
    unknown = set(example) - {"name", "type"} - _accepted(cls)
    assert not unknown, f"docs/engines.md sets {sorted(unknown)} on '{example['type']}'"


def test_command_lines_parse() -> None:
    """Every documented command line parses; one that picks an engine without a hardware
    profile (which names the model itself) names the model too."""
    blocks = [b for b in _fenced("bash") if "fms_dgt.run" in b]
    assert blocks
    lines = [ln for b in blocks for ln in b.replace("\\\n", " ").splitlines() if "fms_dgt.run" in ln]
    engines_named = 0
    for line in lines:
        argv = shlex.split(line, comments=True)
        args = build_parser().parse_args(argv[argv.index("fms_dgt.run") + 1 :])
        if args.engine and "--profile" not in argv:
            assert args.model, line
            engines_named += 1
    assert engines_named


@pytest.mark.parametrize("example", _engine_examples(), ids=lambda e: e["type"])
def test_example_values_pass_the_engine_check(example: dict) -> None:
    """Not only the keys: every value has the type and range the task check demands (the
    rate limits, the batch block)."""
    import fms_dgt.engines  # noqa: F401  (registers the built-in engines)
    from fms_dgt.config.components import check_args

    cls = engines.get(example["type"])
    args = {k: v for k, v in example.items() if k not in ("name", "type")}
    check_args(cls, args, doc=None, key=(), what="engine")


def test_rate_limit_and_batch_sections_exist() -> None:
    assert "## Rate limits and adaptive concurrency" in DOC and "## Batch API" in DOC
    examples = [e for e in _engine_examples() if e["type"] == "openai"]
    assert any("tpm" in e and "rpm" in e for e in examples)
    assert any("batch" in e for e in examples)
