"""The openai engine over the Batch API (``transport: batch``), against the loopback batch
server: answers reach their own callers as the normal API's would, expired and failed items
go alone into new jobs, and a journal lets a new engine (a restarted run) wait for the jobs
of an old one instead of submitting again. The SIGKILL tests through the CLI are in
``tests/reliability/test_batch_resume.py``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fms_dgt.engines import Constraint, LMRequest, LMResult
from fms_dgt.engines.batch.journal import BatchJournal, Group
from fms_dgt.engines.batch.options import BatchOptions
from fms_dgt.engines.openai_engine import OpenAIEngine
from fms_dgt.engines.pricing import Pricing
from fms_dgt.errors import ConfigError
from tests.support.batch_server import BatchServer
from tests.support.fault_server import canned_response

FAST = {"collect_seconds": 0.2, "poll_seconds": 0.05}


def echo(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """Answers with the request's own text, so a mix-up of answers shows."""
    text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
    answer = canned_response(url, body, text=f"echo: {text}")
    answer["usage"] = {"prompt_tokens": len(text), "completion_tokens": 3}
    return answer


@pytest.fixture
def batch_server() -> Any:
    started: list[BatchServer] = []

    def make(**kwargs: Any) -> BatchServer:
        kwargs.setdefault("responder", echo)
        srv = BatchServer(**kwargs).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def make_engine(srv: BatchServer, state: Path, **kw: Any) -> OpenAIEngine:
    options = BatchOptions(**{**FAST, "state_dir": str(state), **kw.pop("batch", {})})
    settings: dict[str, Any] = {"backoff_base": 0.01, "backoff_max": 0.05, **kw}
    return OpenAIEngine("fake", base_url=srv.url, api_key="sk-test", batch=options, **settings)


def chat(text: str) -> LMRequest:
    return LMRequest(messages=[{"role": "user", "content": text}])


def run(engine: OpenAIEngine, requests: list[LMRequest]) -> list[LMResult]:
    async def go() -> list[LMResult]:
        try:
            return await engine.agenerate_batch(requests)
        finally:
            await engine.aclose()

    return asyncio.run(go())


def test_answers_map_back_to_their_requests(batch_server: Any, tmp_path: Path) -> None:
    srv = batch_server(delay=0.2)
    engine = make_engine(srv, tmp_path)
    texts = [f"question {i}" for i in range(40)]
    requests = [chat(t) for t in texts] + [LMRequest(prompt="a prompt")]
    results = run(engine, requests)
    assert [r.text for r in results[:40]] == [f"echo: {t}" for t in texts]
    assert results[40].text == "echo: a prompt"  # completions go into a job of their own
    assert all(r.ok and r.attempts == 1 and r.completion_tokens == 3 for r in results)
    assert sorted(j.endpoint for j in srv.jobs) == ["/v1/chat/completions", "/v1/completions"]
    assert engine.stats.requests == 41 and engine.stats.failed == 0


def test_structured_output_and_job_size(batch_server: Any, tmp_path: Path) -> None:
    srv = batch_server(responder=canned_response)
    engine = make_engine(srv, tmp_path, batch={"max_requests": 4})
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    requests = [
        LMRequest(messages=[{"role": "user", "content": f"n{i}"}], constraint=Constraint(json_schema=schema))
        for i in range(10)
    ]
    results = run(engine, requests)
    assert all(r.ok and r.parsed == [{"name": "x"}] for r in results)
    assert [len(j.lines) for j in srv.jobs] == [4, 4, 2]
    assert all(j.lines[0]["body"]["response_format"]["type"] == "json_schema" for j in srv.jobs)


def test_expired_items_are_resubmitted_alone(batch_server: Any, tmp_path: Path) -> None:
    srv = batch_server(expire=lambda body: body["messages"][0]["content"].endswith(("3", "7")))
    engine = make_engine(srv, tmp_path)
    results = run(engine, [chat(f"q{i}") for i in range(10)])
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(10)]
    assert [r.attempts for r in results] == [2 if i in (3, 7) else 1 for i in range(10)]
    first, second = srv.jobs
    assert first.status == "expired" and len(first.lines) == 10
    assert sorted(b["messages"][0]["content"] for b in second.bodies) == ["q3", "q7"]


def test_partial_failure_resubmits_only_the_failed_items(batch_server: Any, tmp_path: Path) -> None:
    statuses = {"q2": 500, "q5": 429, "q8": 400}  # 400 cannot succeed: recorded, not resent
    srv = batch_server(fail=lambda body: statuses.get(body["messages"][0]["content"]))
    engine = make_engine(srv, tmp_path)
    results = run(engine, [chat(f"q{i}") for i in range(10)])
    assert all(r.ok for i, r in enumerate(results) if i != 8)
    assert not results[8].ok and "HTTP 400" in (results[8].error or "") and results[8].attempts == 1
    assert [len(j.lines) for j in srv.jobs] == [10, 2]
    assert sorted(b["messages"][0]["content"] for b in srv.jobs[1].bodies) == ["q2", "q5"]
    assert engine.stats.failed == 1


def test_a_new_engine_waits_for_the_jobs_of_an_old_one(batch_server: Any, tmp_path: Path) -> None:
    """What a restarted run does, in one process: the first engine is stopped while its job
    runs (its callers cancelled, as a kill would); the second one asks the same questions
    and gets the old job's answers without creating a job."""
    srv = batch_server()
    srv.hold()
    requests = [chat(f"q{i}") for i in range(12)]

    async def interrupted() -> None:
        engine = make_engine(srv, tmp_path)
        pending = asyncio.ensure_future(engine.agenerate_batch(requests))
        while srv.created == 0:
            await asyncio.sleep(0.02)
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await engine.aclose()

    asyncio.run(interrupted())
    assert srv.created == 1
    srv.release()
    engine = make_engine(srv, tmp_path)
    results = run(engine, list(reversed(requests)) + [chat("new")])
    assert [r.text for r in results] == [f"echo: q{i}" for i in reversed(range(12))] + ["echo: new"]
    assert srv.created == 2 and [b["messages"][0]["content"] for b in srv.jobs[1].bodies] == ["new"]
    # the third engine finds nothing left to wait for: the same questions are new jobs
    results = run(make_engine(srv, tmp_path), requests[:2])
    assert all(r.ok for r in results) and srv.created == 3


def test_identical_requests_are_distinct_items(batch_server: Any, tmp_path: Path) -> None:
    srv = batch_server()
    srv.hold()

    async def interrupted() -> None:
        engine = make_engine(srv, tmp_path)
        pending = asyncio.ensure_future(engine.agenerate_batch([chat("same")] * 3))
        while srv.created == 0:
            await asyncio.sleep(0.02)
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await engine.aclose()

    asyncio.run(interrupted())
    srv.release()
    # two of the three are asked again: they take two of the old items; a fourth is new
    results = run(make_engine(srv, tmp_path), [chat("same")] * 4)
    assert all(r.ok for r in results)
    assert [len(j.lines) for j in srv.jobs] == [3, 1]


def test_intent_without_job_id_is_found_by_its_group(batch_server: Any, tmp_path: Path) -> None:
    """A crash between creating a job and writing its id: the next engine finds the job
    through the group id in its metadata."""
    srv = batch_server(create_delay=30.0)
    srv.hold()

    async def interrupted() -> None:
        engine = make_engine(srv, tmp_path)
        pending = asyncio.ensure_future(engine.agenerate_batch([chat(f"q{i}") for i in range(5)]))
        while srv.created == 0:
            await asyncio.sleep(0.02)
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await engine.aclose()

    asyncio.run(interrupted())
    journal = next((tmp_path / "batch_jobs").glob("*.jsonl"))
    assert [json.loads(line)["op"] for line in journal.read_text().splitlines()] == ["intent"]
    srv.create_delay = 0.0
    srv.release()
    results = run(make_engine(srv, tmp_path), [chat(f"q{i}") for i in range(5)])
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(5)] and srv.created == 1


def test_journal_replay_torn_line_and_compaction(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = BatchJournal.open(path)
    for n in range(1100):
        group = Group(f"g{n}", "/v1/chat/completions", 0.0, {f"g{n}-0": f"k{n}", f"g{n}-1": "same"})
        journal.intent(group)
        journal.created(group, f"batch-{n}")
        if n != 7:
            journal.settled(group, [f"g{n}-0", f"g{n}-1"])
    journal.close()
    with open(path, "ab") as f:
        f.write(b'{"op": "settled", "ids": ["g7-')  # the crash
    journal = BatchJournal.open(path)  # the torn line is dropped, the file compacted
    assert list(journal.groups) == ["g7"] and journal.groups["g7"].batch == "batch-7"
    assert len(path.read_text().splitlines()) == 2
    claimed = journal.claim("same")
    assert claimed is not None and claimed[1] == "g7-1" and journal.claim("same") is None
    with pytest.raises(Exception, match="in use by another process"):
        BatchJournal.open(path)
    journal.close()


def test_batch_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="one base_url"):
        OpenAIEngine("m", base_url=["http://a/v1", "http://b/v1"], transport="batch")
    with pytest.raises(ConfigError, match="rpm and tpm"):
        OpenAIEngine("m", base_url="http://a/v1", transport="batch", rpm=10)
    engine = OpenAIEngine("m", base_url="http://a/v1", batch=BatchOptions(completion_window="24h"))
    assert engine.transport_name == "batch" and engine.retry.timeout >= 24 * 3600
    assert not engine.adaptive_concurrency and engine.max_concurrency >= 100_000
    # the Batch API bills half the list price; a block's own pricing is taken as given
    listed = OpenAIEngine("gpt-4o-mini", base_url="http://a/v1").pricing
    halved = OpenAIEngine("gpt-4o-mini", base_url="http://a/v1", transport="batch").pricing
    assert listed is not None and halved is not None
    assert (
        halved.input_per_mtok == listed.input_per_mtok / 2
        and halved.output_per_mtok == listed.output_per_mtok / 2
    )
    given = Pricing(input_per_mtok=1.0, output_per_mtok=2.0)
    assert (
        OpenAIEngine("gpt-4o-mini", base_url="http://a/v1", transport="batch", pricing=given).pricing == given
    )
