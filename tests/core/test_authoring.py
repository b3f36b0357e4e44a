"""The authoring API: one import, requests that take their engine block's sampling,
samplers, and the task.yaml-only ``prompt`` builder's checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.builders.samplers import Samplers
from fms_dgt.config.messages import validated
from fms_dgt.config.schema import TaskFile
from fms_dgt.errors import ConfigError
from fms_dgt.runtime import Runtime
from tests.support.fault_server import FaultServer, canned_response

from .helpers import REPO, SEEDS, run_cli

CAUSAL = REPO / "tasks/core/simple/logical_reasoning/causal"
PROMPT_EXAMPLE = REPO / "tasks/examples/prompt/task.yaml"


def test_everything_a_builder_author_needs_is_one_import_away() -> None:
    code = (
        "import sys, fms_dgt\n"
        "from fms_dgt import (DataPoint, GenerationTask, TransformationTask, GenerationDataBuilder,\n"
        "    TransformationDataBuilder, PromptBuilder, PromptTransformer, Rejection, Engine, LMRequest,\n"
        "    LMResult, Constraint, SamplingParams, FilterBlock, Postprocessor, Formatter, Datastore,\n"
        "    register_data_builder, register_block, register_engine, register_formatter, register_datastore)\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('vllm', 'torch', 'openai')]\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    bare = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fms_dgt; print(len([m for m in sys.modules if m.startswith('fms_dgt')]))",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert int(bare.stdout) <= 4  # the names load when used, not on `import fms_dgt`


def _recording_server() -> tuple[FaultServer, list[dict[str, Any]]]:
    bodies: list[dict[str, Any]] = []

    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        bodies.append(body)
        return canned_response(path, body)

    return FaultServer(responder=respond), bodies


def test_a_request_without_params_takes_its_blocks_sampling(tmp_path: Path) -> None:
    """The simple builder sends LMRequests without params: the block's YAML sampling
    (max_tokens 256, temperature 0.8) must reach the server, and an --engine override's
    sampling goes on top."""
    srv, bodies = _recording_server()
    with srv:
        base = ("--task-paths", str(CAUSAL), "--num-outputs-to-generate", "2", "--engine", "openai")
        base += ("--model", "fake", "--base-url", srv.url)
        r = run_cli(*base, "--output-dir", str(tmp_path / "a"))
        assert r.returncode in (0, 1), r.stderr  # canned answers may not pass the filters
        assert bodies and all(b["max_tokens"] == 256 and b["temperature"] == 0.8 for b in bodies)
        bodies.clear()
        override = tmp_path / "ov.yaml"
        override.write_text(yaml.safe_dump({"engines": {"type": "openai", "sampling": {"temperature": 0.1}}}))
        r = run_cli(*base, "--output-dir", str(tmp_path / "b"), "--config-path", str(override))
        assert bodies and all(b["max_tokens"] == 256 and b["temperature"] == 0.1 for b in bodies), bodies[:1]


def _samplers(tmp_path: Path, spec: dict[str, Any]) -> Samplers:
    task = {
        "task_name": "t",
        "task_description": "d",
        "created_by": "c",
        "data_builder": "b",
        "samplers": spec,
    }
    checked = validated(TaskFile, task, None)
    assert checked.samplers is not None
    return Samplers(checked.samplers, tmp_path)


def test_samplers_draw_reproducibly_and_as_declared(tmp_path: Path) -> None:
    (tmp_path / "people.jsonl").write_text(
        "".join(
            json.dumps({"name": n, "job": j, "secret": 1}) + "\n"
            for n, j in [("Ada", "nurse"), ("Bo", "pilot")]
        )
    )
    spec = {
        "topic": {"type": "category", "values": ["a", "b", "c"], "weights": [1, 0, 3]},
        "sub": {
            "type": "subcategory",
            "parent": "topic",
            "values": {"a": ["a1", "a2"], "b": ["b1"], "c": ["c1"]},
        },
        "level": {"type": "uniform", "low": 1, "high": 3},
        "temp": {"type": "uniform", "low": 0.5, "high": 1.5, "decimals": 1},
        "day": {"type": "datetime", "start": "2024-01-01", "end": "2024-01-31", "format": "%Y-%m-%d"},
        "who": {"type": "persona", "path": "people.jsonl", "fields": ["name", "job"]},
    }
    samplers = _samplers(tmp_path, spec)
    draws = [samplers.draw(7, i) for i in range(400)]
    assert draws == [samplers.draw(7, i) for i in range(400)]  # same seed and call: same values
    assert draws != [samplers.draw(8, i) for i in range(400)]
    assert {d["topic"] for d in draws} == {"a", "c"}  # weight 0 never drawn
    assert sum(d["topic"] == "c" for d in draws) > 200  # weight 3 of 4
    assert all(d["sub"].startswith(d["topic"]) for d in draws)  # conditioned on the parent
    assert {d["level"] for d in draws} == {1, 2, 3}
    assert all(0.5 <= d["temp"] <= 1.5 and round(d["temp"], 1) == d["temp"] for d in draws)
    assert all(d["day"].startswith("2024-01-") for d in draws)
    assert {d["who"]["name"] for d in draws} == {"Ada", "Bo"} and all("secret" not in d["who"] for d in draws)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"x": {"type": "categori", "values": [1]}}, "unknown type 'categori'"),
        ({"x": {"type": "category", "values": [1, 2], "weights": [-1, 2]}}, "must not be negative"),
        ({"x": {"type": "category", "values": [1, 2], "weights": [0, 0]}}, "all zero"),
        ({"x": {"type": "category", "values": [1, 2], "weights": [1]}}, "1 entries for 2 values"),
        ({"x": {"type": "uniform", "low": 5, "high": 1}}, "'low' (5) is above 'high' (1)"),
        ({"x": {"type": "persona", "path": "nobody.jsonl"}}, "no file matches 'nobody.jsonl'"),
        (
            {"x": {"type": "subcategory", "parent": "nope", "values": {"a": [1]}}},
            "depends on 'nope', which is no sampler",
        ),
        (
            {
                "p": {"type": "category", "values": ["a", "b"]},
                "x": {"type": "subcategory", "parent": "p", "values": {"a": [1]}},
            },
            "lists no values for 'b' of 'p'",
        ),
    ],
)
def test_bad_samplers_are_config_errors(tmp_path: Path, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _samplers(tmp_path, spec)
    assert message in info.value.render()


def _prompt_task(tmp_path: Path, **changes: Any) -> Path:
    data = yaml.safe_load(PROMPT_EXAMPLE.read_text())
    data.update(changes)
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_prompt_builder_checks_its_template_and_fields_when_loading(tmp_path: Path) -> None:
    pt = Runtime([str(_prompt_task(tmp_path))], output_dir=tmp_path / "out").prepare()[0]
    record = pt.task.OUTPUT_DATA_TYPE
    assert record.field_names()[-3:] == ["question", "answer", "difficulty"]
    schema = pt.task.constraint.json_schema  # type: ignore[attr-defined]
    assert schema["properties"]["difficulty"]["enum"] == ["easy", "hard"]
    with pytest.raises(ConfigError, match="uses 'topc', which nothing provides.*did you mean 'topic'"):
        Runtime(
            [str(_prompt_task(tmp_path, prompt="About {{ topc }}"))], output_dir=tmp_path / "out"
        ).prepare()
    bad = _prompt_task(
        tmp_path,
        filters=[{"name": "len", "type": "length", "fields": ["answr"], "min_chars": 3}],
    )
    with pytest.raises(
        ConfigError, match="reads field 'answr', which PromptRecord records lack.*did you mean 'answer'"
    ):
        Runtime([str(bad)], output_dir=tmp_path / "out").prepare()
    wrong = _prompt_task(tmp_path, output={"question": {"type": "text"}})
    with pytest.raises(ConfigError, match="output.question.type"):
        Runtime([str(wrong)], output_dir=tmp_path / "out").prepare()
    _ = SEEDS
