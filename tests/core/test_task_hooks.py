"""The hooks a Task subclass overrides reach the runtime: ``instantiate_input_example`` for
seeds and input rows, ``instantiate_output_example`` for records a builder returns as dicts,
and ``is_complete`` for when generation or a transformation pass stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from fms_dgt.config.overrides import Overrides
from fms_dgt.runtime import Runtime

from .helpers import FIXTURE_BUILDERS, read_jsonl, write_task


def _run(tmp_path: Path, task_path: Path) -> list:
    rt = Runtime(
        [str(task_path)], [str(FIXTURE_BUILDERS)], output_dir=tmp_path / "out", overrides=Overrides()
    )
    rt.prepare()
    return asyncio.run(rt.run())


def test_generation_hooks(tmp_path: Path) -> None:
    path = write_task(
        tmp_path / "t",
        builder="hooks_generate",
        stop_at=7,
        seed_examples=[{"question": "  why   is the sky blue? ", "answer": "Scattering."}],
        runner_config={"num_outputs_to_generate": 50, "max_concurrent_calls": 1},
    )
    (outcome,) = _run(tmp_path, path)
    assert outcome.status == "complete"
    final = read_jsonl(tmp_path / "out/t1/final_data.jsonl")
    assert len(final) == 7  # the override, not num_outputs_to_generate, decided when to stop
    assert all(r["checked"] is True for r in final)  # built through instantiate_output_example
    # the seed went through instantiate_input_example before the builder saw it
    assert {r["lineage"]["seed_question"] for r in final} == {"WHY IS THE SKY BLUE?"}


def test_transformation_is_complete_ends_the_pass_early(tmp_path: Path) -> None:
    task = {
        "task_name": "t1",
        "task_description": "a transformation stopped by its is_complete override",
        "created_by": "tests",
        "data_builder": "hooks_transform",
        "stop_at": 10,
        "data": [{"question": f"Question {i}?"} for i in range(40)],
        "runner_config": {"transform_batch_size": 5, "max_concurrent_calls": 1},
    }
    path = tmp_path / "t" / "task.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(task, sort_keys=False))
    (outcome,) = _run(tmp_path, path)
    assert outcome.status == "complete"
    final = read_jsonl(tmp_path / "out/t1/final_data.jsonl")
    assert [r["question"] for r in final] == [f"question {i}?" for i in range(10)]
