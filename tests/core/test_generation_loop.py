"""The generation loop: no batch barrier, exact targets, postprocessing, stalls, filters."""

import asyncio
import time

import pytest

from fms_dgt.blocks.base import FilterBlock
from fms_dgt.config.overrides import Overrides
from fms_dgt.registry import blocks
from fms_dgt.runtime import Runtime

from .helpers import FIXTURE_BUILDERS, read_jsonl, write_task


class RejectOdd(FilterBlock):
    """Rejects records whose scripted number is odd (a deterministic filter for tests)."""

    def check(self, record):
        n = int(record.question.split()[4])
        return f"odd number: {n}" if (n // 100) % 2 else None


class RejectAll(FilterBlock):
    def check(self, record):
        return "never good enough"


class DropHalf(FilterBlock):
    """As a postprocessor: keeps every other record it sees."""

    def __init__(self, name=None, **kw):
        super().__init__(name, **kw)
        self.i = 0

    def reset(self):
        self.i = 0

    def check(self, record):
        self.i += 1
        return "dropped" if self.i % 2 == 0 else None


if "test_reject_odd" not in blocks:
    blocks.add("test_reject_odd", RejectOdd)
    blocks.add("test_drop_half", DropHalf)
    blocks.add("test_reject_all", RejectAll)


def run(tmp_path, task_path, **overrides):
    rt = Runtime(
        [str(task_path)],
        [str(FIXTURE_BUILDERS)],
        output_dir=tmp_path / "out",
        overrides=Overrides(**overrides),
    )
    rt.prepare()
    return rt, asyncio.run(rt.run())


def test_exact_target_and_lineage(tmp_path):
    path = write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 25})
    rt, outcomes = run(tmp_path, path)
    assert outcomes[0].status == "complete"
    final = read_jsonl(tmp_path / "out/t1/final_data.jsonl")
    assert len(final) == 25
    assert len({r["id"] for r in final}) == 25
    for r in final:
        assert r["lineage"]["builder"] == "echo" and "request_idx" in r["lineage"]
        assert len(r["lineage"]["icl_ids"]) >= 1
    res = outcomes[0].results
    assert res["counts"]["final"] == 25 and res["engines"]["llm1"]["requests"] >= 25
    assert res["tokens"]["prompt"] > 0


@pytest.mark.parametrize("builder", ["echo", "echo_sync"])
def test_no_batch_barrier(tmp_path, builder):
    """One call in eight sleeps 1 s; the others must keep flowing meanwhile, so the run takes
    about as long as the slow calls in parallel, not one barrier per batch."""
    path = write_task(
        tmp_path / "t",
        builder=builder,
        slow_every=8,
        slow_seconds=1.0,
        runner_config={"num_outputs_to_generate": 200, "max_concurrent_calls": 16},
    )
    t0 = time.monotonic()
    _, outcomes = run(tmp_path, path)
    elapsed = time.monotonic() - t0
    assert outcomes[0].status == "complete"
    # with a barrier per batch of 16 calls (each holding 2 slow ones) 200 records need ~13 s
    assert elapsed < 6, elapsed


def test_filters_reject_with_block_and_reason(tmp_path):
    path = write_task(
        tmp_path / "t",
        filters=[{"name": "odd", "type": "test_reject_odd"}],
        runner_config={"num_outputs_to_generate": 10},
    )
    _, outcomes = run(tmp_path, path)
    assert outcomes[0].status == "complete"
    rejected = read_jsonl(tmp_path / "out/t1/rejected.jsonl")
    assert rejected and all(r["block"] == "odd" and r["reason"].startswith("odd number") for r in rejected)
    assert outcomes[0].results["rejected_by_block"]["odd"]["odd number"] == len(rejected)
    final = read_jsonl(tmp_path / "out/t1/final_data.jsonl")
    assert all((int(r["question"].split()[4]) // 100) % 2 == 0 for r in final)


def test_postprocessing_below_target_generates_more(tmp_path):
    path = write_task(
        tmp_path / "t", runner_config={"num_outputs_to_generate": 20, "max_concurrent_calls": 4}
    )
    over = {"builders": {"echo": {"postprocessors": [{"name": "half", "type": "test_drop_half"}]}}}
    _, outcomes = run(tmp_path, path, **over)
    assert outcomes[0].status == "complete"
    assert len(read_jsonl(tmp_path / "out/t1/final_data.jsonl")) == 20
    assert outcomes[0].results["epoch"] >= 1
    assert (tmp_path / "out/t1/postproc_data_1.jsonl").exists()
    post = read_jsonl(tmp_path / "out/t1/rejected.jsonl")
    assert post and {r["stage"] for r in post} == {"postprocessing"}
    ids = [r["record"]["id"] for r in post]
    assert len(ids) == len(set(ids))  # each postprocessing rejection recorded once across epochs


def test_stall_stops_with_status(tmp_path):
    path = write_task(
        tmp_path / "t",
        filters=[{"name": "strict", "type": "test_reject_all"}],
        runner_config={"num_outputs_to_generate": 5, "max_concurrent_calls": 2, "max_stalled_attempts": 2},
    )
    _, outcomes = run(tmp_path, path)
    assert outcomes[0].status == "stalled"
    assert "no record accepted" in outcomes[0].message
    assert outcomes[0].results["status"] == "stalled"


def test_failed_requests_are_recorded_not_silent(tmp_path):
    path = write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": 10})
    over = {
        "engine": {
            "class_path": "tests.support.scripted_engine:ScriptedEngine",
            "fail_every": 3,
            "max_retries": 0,
        }
    }
    _, outcomes = run(tmp_path, path, **over)
    assert outcomes[0].status == "complete"
    failed = read_jsonl(tmp_path / "out/t1/failed.jsonl")
    assert failed and all("scripted failure" in f["error"] and f["attempts"] == 1 for f in failed)
    assert outcomes[0].results["counts"]["failed"] == len(failed)
    assert outcomes[0].results["engines"]["llm1"]["failed"] == len(failed)


def test_parquet_output(tmp_path):
    import pandas as pd

    path = write_task(
        tmp_path / "t",
        datastore={"output_data_format": "parquet"},
        runner_config={"num_outputs_to_generate": 12},
    )
    _, outcomes = run(tmp_path, path)
    frame = pd.read_parquet(tmp_path / "out/t1/final_data.parquet")
    assert len(frame) == 12
    from fms_dgt.datastores.files import FileDatastore

    store = FileDatastore(
        store_name="final_data", output_dir=tmp_path / "out", task_name="t1", output_data_format="parquet"
    )
    records = list(store.load_data())
    assert len(records) == 12 and isinstance(records[0]["lineage"], dict)


def test_parquet_output_feeds_another_task_as_seeds(tmp_path):
    """A run's final_data.parquet (a folder of parts) is a valid seed_datastore."""
    path = write_task(tmp_path / "t", datastore={"output_data_format": "parquet"})
    run(tmp_path, path)
    second = write_task(
        tmp_path / "t2",
        name="t2",
        seed_datastore={"data_path": str(tmp_path / "out/t1/final_data.parquet")},
    )
    rt = Runtime([str(second)], [str(FIXTURE_BUILDERS)], output_dir=tmp_path / "out2", overrides=Overrides())
    task = rt.prepare()[0].task
    loaded = [s for s in task.seed_examples if s.question.startswith("Why does scripted event")]
    assert len(loaded) == 10 and all(s.is_seed for s in loaded)


def test_a_redone_postprocessing_pass_does_not_repeat_its_rejections(tmp_path):
    """Crash after a pass wrote its rejections but before it saved the state: the redone
    pass (same starting point) records nothing twice."""
    import json

    path = write_task(
        tmp_path / "t", runner_config={"num_outputs_to_generate": 10, "max_concurrent_calls": 2}
    )
    over = {"builders": {"echo": {"postprocessors": [{"name": "half", "type": "test_drop_half"}]}}}
    run(tmp_path, path, **over)
    state_file = tmp_path / "out/t1/state.json"
    before = read_jsonl(tmp_path / "out/t1/rejected.jsonl")
    state = json.loads(state_file.read_text())
    # as the state stood before the last pass: that pass is redone on resume
    state.update(status="generating", postprocessed_upto=0, formatted=False)
    state_file.write_text(json.dumps(state))
    _, outcomes = run(tmp_path, path, **over)
    assert outcomes[0].status == "complete"
    after = read_jsonl(tmp_path / "out/t1/rejected.jsonl")
    keys = [(r["record"]["id"], r["block"]) for r in after]
    assert len(keys) == len(set(keys)) and len(after) >= len(before)
