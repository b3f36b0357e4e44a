"""Running catalogue example tasks on the real default model, through the session's one
loaded vLLM engine.

An in-process ``vllm`` engine with the same engine arguments as the session fixture shares
its loaded model (``engines/vllm_engine.py`` keeps one runtime per configuration), so each
example runs in-process with an engine override naming those arguments and no second model
is loaded. Targets are small (2-5 records): the point is the mechanics, a 135M model's
answers are poor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fms_dgt.config.overrides import Overrides
from fms_dgt.runtime import Outcome, Runtime

REPO = Path(__file__).resolve().parents[2]
# the session fixture's engine arguments (tests/conftest.py): equal arguments share its model
SHARED_ENGINE = {"type": "vllm", "max_model_len": 1024, "max_concurrency": 32, "timeout": 300}

RunExample = Callable[..., tuple[Runtime, Outcome]]


@pytest.fixture
def run_example(vllm_engine: Any, tmp_path: Path) -> RunExample:
    """``run_example(task_path, target=3, builder_paths=(), **runner)`` runs one task on the
    default model and returns the runtime and its outcome."""

    def run(task: Path | str, target: int | None = 3, builder_paths: tuple[str, ...] = (), **runner: Any):
        rc = dict(runner)
        if target is not None:
            rc["num_outputs_to_generate"] = target
        overrides = Overrides(engine=dict(SHARED_ENGINE), runner=rc)
        rt = Runtime([str(task)], list(builder_paths), output_dir=tmp_path / "out", overrides=overrides)
        rt.prepare()
        outcomes = asyncio.run(rt.run())
        return rt, outcomes[0]

    return run
