"""Paging, search and filters against the stores: the indexes return exactly the files'
records, and the pages (over HTTP, on a real run's output) show the files' counts."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fms_dgt.datastores.parquet import ParquetStore
from fms_dgt.ledger import reason_kind
from fms_dgt.view.store_index import TICK, JsonlIndex, ParquetIndex
from tests.view.viewer_support import STUB_TASK, ViewerServer, lines, stub_run

T = STUB_TASK.replace("/", "%2F")


def _records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"r{i}",
            "question": f"Question {i} about {'Zebras' if i % 7 == 0 else 'cats'}",
            "messages": [{"role": "user", "content": "needle" if i % 11 == 0 else "hay"}],
            "zebra_key": i,  # a key that contains the word: keys never match
        }
        for i in range(start, start + n)
    ]


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _found(index: JsonlIndex | ParquetIndex, query: str) -> list[int]:
    return [p for p in index.search(query) if p != TICK]


def test_jsonl_index_grows_with_the_file_and_skips_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    recs = _records(300)
    path.write_text(_jsonl(recs[:100]) + '{"id": "r100", "quest')
    index = JsonlIndex(path)
    assert index.refresh() == 100
    assert [r for _, r in index.read(95, 10)] == recs[95:100]
    with open(path, "r+") as fh:  # the writer finishes the line and appends more
        fh.seek(len(_jsonl(recs[:100])))
        fh.write(_jsonl(recs[100:]))
    assert index.refresh() == 300
    assert [r for _, r in index.read(0, 300)] == recs
    assert [p for p, _ in index.read(290, 50)] == list(range(290, 300))
    assert _found(index, "zebras") == [i for i in range(300) if i % 7 == 0]
    assert _found(index, "NEEDLE") == [i for i in range(300) if i % 11 == 0]
    assert _found(index, "zebra_key") == []
    assert index.find_id("r123") == 123 and index.find_id("r999") is None
    replacement = tmp_path / "new.jsonl"  # a postprocessing pass renames a new file in
    replacement.write_text(_jsonl(recs[:10]))
    os.replace(replacement, path)
    assert index.refresh() == 10
    assert [r for _, r in index.read(0, 50)] == recs[:10]


def test_parquet_index_pages_parts_and_the_write_ahead_log(tmp_path: Path) -> None:
    recs = _records(1000)
    store = ParquetStore(tmp_path / "data.parquet")
    store.append(recs[:400])
    store.compact()
    store.append(recs[400:700])
    store.compact()
    store.append(recs[700:])  # still in the log
    index = ParquetIndex(tmp_path / "data.parquet")
    assert index.refresh() == 1000
    assert [r for _, r in index.read(0, 1000)] == list(store.iter_records()) == recs
    assert [r for _, r in index.read(390, 20)] == recs[390:410]
    assert [r for _, r in index.read(690, 20)] == recs[690:710]
    assert _found(index, "ZEBRAS") == [i for i in range(1000) if i % 7 == 0]
    assert _found(index, "needle") == [i for i in range(1000) if i % 11 == 0]
    assert index.find_id("r850") == 850
    store.compact()
    assert index.refresh() == 1000 and [r for _, r in index.read(995, 10)] == recs[995:]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("viewer_paging")
    root = base / "out"
    shutil.copytree(stub_run(base / "run"), root)
    return root


@pytest.fixture(scope="module")
def server(run_dir: Path) -> Iterator[ViewerServer]:
    with ViewerServer(run_dir) as srv:
        yield srv


def _total(body: str) -> int:
    m = re.search(r'<span id="total">(\d+)</span>', body)
    assert m, body[:2000]
    return int(m.group(1))


def _ids(body: str) -> list[str]:
    return re.findall(r"<td><code>([0-9a-f]{16})</code></td>", body)


def test_counts_shown_are_the_files_counts(server: ViewerServer, run_dir: Path) -> None:
    task = run_dir / STUB_TASK
    status = json.loads(server.get("/api/status"))["tasks"]
    assert [t["name"] for t in status] == [STUB_TASK]
    counts = status[0]["counts"]
    for store in ("data", "final_data", "rejected", "failed"):
        n = len(lines(task / f"{store}.jsonl"))
        assert n > 0, store
        assert counts[store] == n, store
        assert _total(server.get(f"/records?t={T}&store={store}")) == n, store
    overview = server.get("/")
    assert f">{counts['data']}</a>" in overview and f">{counts['rejected']}</a>" in overview


def test_pages_hold_the_files_records_in_order(server: ViewerServer, run_dir: Path) -> None:
    data = lines(run_dir / STUB_TASK / "data.jsonl")
    seen = []
    page = 1
    while True:
        body = server.get(f"/records?t={T}&store=data&size=5&page={page}")
        seen += _ids(body)
        if 'id="next"' not in body:
            break
        page += 1
    assert page == -(-len(data) // 5)
    assert seen == [r["id"] for r in data]


def test_filters_by_block_and_reason_match_the_file(server: ViewerServer, run_dir: Path) -> None:
    rejected = lines(run_dir / STUB_TASK / "rejected.jsonl")
    by = Counter((r["block"], reason_kind(r["reason"])) for r in rejected)
    assert len({b for b, _ in by}) == 2, by  # both filters rejected something
    task_page = server.get(f"/task?t={T}")
    for (block, reason), n in by.items():
        body = server.get(f"/records?t={T}&store=rejected&f1={block}&f2={reason.replace(' ', '+')}")
        assert _total(body) == n
        want = [r["record"]["id"] for r in rejected if r["block"] == block][: min(n, 25)]
        assert _ids(body) == want
        assert f'<td class="num">{n}</td>' in task_page
    only_block = Counter(b for b, _ in by.elements())
    for block, n in only_block.items():
        assert _total(server.get(f"/records?t={T}&store=rejected&f1={block}")) == n
    failed = lines(run_dir / STUB_TASK / "failed.jsonl")
    body = server.get(f"/records?t={T}&store=failed&f1=engine")
    assert _total(body) == sum(r["stage"] == "engine" for r in failed) and "401" in body


def test_search_counts_match_the_file(server: ViewerServer, run_dir: Path) -> None:
    data = lines(run_dir / STUB_TASK / "data.jsonl")
    for query in ("event 2", "EVENT 1", "cause 3.", "<script>", "no such text anywhere", "question"):
        want = [
            r["id"]
            for r in data
            if any(query.lower() in str(v).lower() for v in r.values() if isinstance(v, str))
        ]
        body = server.get(
            f"/records?t={T}&store=data&size=100&q={query.replace(' ', '+').replace('<', '%3C').replace('>', '%3E')}"
        )
        assert _total(body) == len(want), query
        assert _ids(body) == want, query


def test_counts_move_while_a_run_writes(server: ViewerServer, run_dir: Path) -> None:
    path = run_dir / STUB_TASK / "data.jsonl"
    before = json.loads(server.get("/api/status"))["tasks"][0]["counts"]["data"]
    with open(path, "a") as fh:
        fh.write(_jsonl([{"id": "a" * 16, "question": "late"}]) + '{"id": "torn')
    assert json.loads(server.get("/api/status"))["tasks"][0]["counts"]["data"] == before + 1
    with open(path, "a") as fh:
        fh.write('"}\n')
    assert json.loads(server.get("/api/status"))["tasks"][0]["counts"]["data"] == before + 2


def test_a_record_page_shows_lineage_and_resolves_its_examples(server: ViewerServer, run_dir: Path) -> None:
    data = lines(run_dir / STUB_TASK / "data.jsonl")
    i, rec = next((i, r) for i, r in enumerate(data) if r.get("lineage", {}).get("icl_ids"))
    body = server.get(f"/record?t={T}&store=data&i={i}")
    assert rec["id"] in body and 'id="lineage"' in body
    for icl in rec["lineage"]["icl_ids"]:
        assert f"<code>{icl}</code>" in body
    assert "seed example" in body and "not found" not in body
    rej = server.get(f"/record?t={T}&store=rejected&i=0")
    assert 'id="why"' in rej and "block" in rej
    compare = server.get(f"/compare?t={T}")
    assert "4 seed examples" in compare and "Why is the road wet?" in compare


def test_a_running_task_shows_live_status_and_a_dead_run_as_interrupted(tmp_path: Path) -> None:
    import subprocess
    import sys

    task = tmp_path / "out" / "live"
    task.mkdir(parents=True)
    (task / "data.jsonl").write_text(_jsonl(_records(3)))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    for pid, want in ((os.getpid(), "running"), (int(dead.stdout), "interrupted")):
        results = {"status": "running", "pid": pid, "started_at": "2026-01-01T00:00:00+00:00", "target": 6}
        (task / "task_results.json").write_text(json.dumps(results))
        with ViewerServer(tmp_path / "out") as srv:
            (row,) = json.loads(srv.get("/api/status"))["tasks"]
        assert row["status"] == want and row["progress"] == 0.5
        assert (row["rate"] or 0) > 0 if want == "running" else row["rate"] is None


def test_chat_records_render_as_conversations(tmp_path: Path) -> None:
    task = tmp_path / "out" / "chat"
    task.mkdir(parents=True)
    chat = {
        "id": "c1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is <b>2+2</b>?"},
            {"role": "assistant", "content": "4"},
        ],
    }
    (task / "formatted_data.jsonl").write_text(_jsonl([chat]))
    with ViewerServer(tmp_path / "out") as srv:
        page = srv.get("/record?t=chat&store=formatted_data&i=0")
        listing = srv.get("/records?t=chat&store=formatted_data")
    roles = re.findall(
        r'<div class="msg role-(\w+)"><div class="role">\w+</div><div class="text">([^<]*)</div>', page
    )
    assert roles == [("system", "Be brief."), ("user", "What is &lt;b&gt;2+2&lt;/b&gt;?"), ("assistant", "4")]
    assert "user: What is &lt;b&gt;2+2&lt;/b&gt;? | assistant: 4" in listing


def test_the_viewer_follows_a_run_while_it_writes(tmp_path: Path) -> None:
    """A real CLI run against a slow fake server: the viewer, started first, sees the task
    appear as running, its accepted count grow, and then the run complete."""
    import subprocess
    import time

    import yaml

    from tests.core.helpers import write_task
    from tests.reliability.crash import cli_command, cli_env
    from tests.reliability.test_server_faults import ENGINE
    from tests.support.fault_server import FaultServer
    from tests.view.viewer_support import _responder

    write_task(
        tmp_path / "t",
        name="live/run",
        runner_config={"num_outputs_to_generate": 30, "max_concurrent_calls": 2},
    )
    override = tmp_path / "ov.yaml"
    override.write_text(yaml.safe_dump({"engines": {**ENGINE, "max_concurrency": 2}}))
    out = tmp_path / "out"
    out.mkdir()
    seen: list[tuple[str, int]] = []
    with FaultServer(responder=_responder(), latency=0.15) as fake, ViewerServer(out) as srv:
        proc = subprocess.Popen(
            cli_command(
                *(
                    "--task-paths",
                    str(tmp_path / "t"),
                    "--config-path",
                    str(override),
                    "--output-dir",
                    str(out),
                ),
                *("--engine", "openai", "--base-url", fake.url, "--model", "fake"),
            ),
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                tasks = json.loads(srv.get("/api/status"))["tasks"]
                if tasks:
                    seen.append((tasks[0]["status"], tasks[0]["counts"].get("data", 0)))
                time.sleep(0.2)
            assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
        final = json.loads(srv.get("/api/status"))["tasks"][0]
    running = [n for status, n in seen if status == "running"]
    assert len(set(running)) >= 3, seen  # the count moved while the run was going
    assert running == sorted(running)
    assert final["status"] == "complete" and final["counts"]["data"] == len(
        lines(out / "live/run/data.jsonl")
    )


def test_a_big_first_index_is_built_in_the_background(tmp_path: Path) -> None:
    import time

    path = tmp_path / "data.jsonl"
    recs = _records(20_000)
    path.write_text(_jsonl(recs))
    index = JsonlIndex(path, background_bytes=1000)
    first = index.refresh()
    assert first >= 25 or not index.building
    assert [r for _, r in index.read(0, 25)] == recs[:25]  # the first page at once
    deadline = time.monotonic() + 30
    while index.building and time.monotonic() < deadline:
        time.sleep(0.01)
    assert index.refresh() == 20_000 and not index.building
    assert [r for _, r in index.read(19_990, 20)] == recs[19_990:]
    with open(path, "a") as fh:  # later appends: indexed in place (small)
        fh.write(_jsonl(_records(3, 20_000)))
    assert index.refresh() == 20_003
