"""Fuzzing the task loader: whatever bytes or structure a task.yaml holds, loading it either
succeeds or raises the project's ConfigError (which the CLI turns into one located message
and exit status 2), never anything else (a traceback for the user)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fms_dgt.errors import ConfigError
from fms_dgt.runtime import Runtime
from tests.core.helpers import FIXTURE_BUILDERS

KEYS = [
    "task_name",
    "task_description",
    "created_by",
    "data_builder",
    "seed_examples",
    "seed_datastore",
    "data",
    "formatter",
    "runner_config",
    "datastore",
    "filters",
    "question",
    "answer",
    "type",
    "class_path",
    "init_args",
    "name",
    "data_path",
    "data_format",
    "num_outputs_to_generate",
    "seed_batch_size",
    "output_data_format",
    "fields",
    "slow_every",
]
VALID: dict[str, Any] = {
    "task_name": "fuzz",
    "task_description": "fuzzed task",
    "created_by": "tests",
    "data_builder": "echo",
    "seed_examples": [{"question": "Why?", "answer": "Because."}],
    "runner_config": {"num_outputs_to_generate": 3},
}
YAMLISH = st.text(
    alphabet=st.sampled_from(
        list(":-[]{}#&*!|>'\"%@`,? \n\t\\$") + list("abqxyz019_") + ["\x00", "é", "\ufeff"]
    ),
    max_size=200,
)
FRAGMENTS = st.sampled_from(
    [
        "task_name: ",
        "data_builder: echo\n",
        "seed_examples:\n  - ",
        "!include ",
        "${",
        "&a ",
        "*a",
        "!!python/object:os.system ",
        "<<: ",
        "? ",
        "---\n",
        "...\n",
        "%YAML 1.1\n",
        "runner_config: {",
        "\n  ",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["echo", "default", "jsonl", "parquet", "chat", "exact_dedup", "${HOME}", "${X", "*.jsonl"]
    ),
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), children, max_size=5),
    ),
    max_leaves=20,
)
FUZZ = settings(
    max_examples=int(os.environ.get("DGT_FUZZ_EXAMPLES", "120")),  # raise it for a longer hunt
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _load(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "task.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            Runtime([str(path)], [str(FIXTURE_BUILDERS)], output_dir=Path(tmp) / "out").prepare()
        except ConfigError as err:
            assert err.render()  # renders without raising


@FUZZ
@given(st.lists(st.one_of(YAMLISH, FRAGMENTS), max_size=12).map("".join))
def test_yamlish_text(text: str) -> None:
    _load(text)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _load(data)


@FUZZ
@given(STRUCTURES)
def test_arbitrary_structures(value: Any) -> None:
    _load(yaml.safe_dump(value, allow_unicode=True))


@FUZZ
@given(
    st.sampled_from(sorted(VALID) + ["datastore", "formatter", "filters", "seed_datastore", "data"]),
    STRUCTURES,
)
def test_valid_task_with_one_value_replaced(key: str, value: Any) -> None:
    """Mostly-valid tasks reach the deep checks (runner_config, seeds, components)."""
    _load(yaml.safe_dump({**VALID, key: value}, allow_unicode=True))


@FUZZ
@given(st.sampled_from(["runner_config", "datastore", "formatter", "seed_datastore"]), STRUCTURES)
def test_valid_task_with_a_nested_section_fuzzed(section: str, value: Any) -> None:
    nested = value if isinstance(value, dict) else {"type": value}
    _load(yaml.safe_dump({**VALID, section: nested}, allow_unicode=True))
