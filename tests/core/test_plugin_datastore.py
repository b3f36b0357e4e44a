"""A datastore registered by a plugin carries a whole run: records appended, final data
replaced, a resumed run rebuilt from it, ``--restart`` emptied through ``clear``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fms_dgt.config.overrides import Overrides
from fms_dgt.registry import datastores
from fms_dgt.runtime import Runtime
from tests.support.memory_store import TABLES

from .helpers import FIXTURE_BUILDERS, write_task

if "test_memory" not in datastores:
    datastores.add("test_memory", "tests.support.memory_store:MemoryDatastore")


def _run(tmp_path: Path, restart: bool = False) -> str:
    rt = Runtime(
        [str(tmp_path / "t")],
        [str(FIXTURE_BUILDERS)],
        output_dir=tmp_path / "out",
        overrides=Overrides(),
        restart=restart,
    )
    rt.prepare()
    (outcome,) = asyncio.run(rt.run())
    return outcome.status


def test_plugin_store_holds_the_run_and_restart_clears_it(tmp_path: Path) -> None:
    ns = tmp_path.name
    write_task(
        tmp_path / "t",
        datastore={"type": "test_memory", "namespace": ns},
        runner_config={"num_outputs_to_generate": 12},
    )
    assert _run(tmp_path) == "complete"
    data, final = TABLES[(f"{ns}/t1", "data")], TABLES[(f"{ns}/t1", "final_data")]
    assert len(final) == 12 and len({r["id"] for r in final}) == 12
    assert len(data) >= 12
    assert not (tmp_path / "out/t1/data.jsonl").exists()  # nothing went around the plugin

    # a restart empties the plugin's tables through clear(): nothing of run 1 survives
    # (same process, same scripted answers: marked rows tell the runs apart)
    for store in ("data", "rejected", "failed", "final_data"):
        TABLES.setdefault((f"{ns}/t1", store), []).append({"stale": store})
    assert _run(tmp_path, restart=True) == "complete"
    assert len(TABLES[(f"{ns}/t1", "final_data")]) == 12
    stale = [r for rows in TABLES.values() for r in rows if "stale" in r]
    assert stale == []
    # without --restart, the completed task is left as it is
    assert _run(tmp_path) == "complete"
    assert len(TABLES[(f"{ns}/t1", "final_data")]) == 12
