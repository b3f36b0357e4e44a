"""The benchmark harness works: the stub server answers like an OpenAI server with the
shape the simple builder expects and keeps honest stats, and a tiny bench run completes
through the real CLI. No timing is asserted (the figures live in docs/benchmarks.md)."""

from __future__ import annotations

import json
import math
import statistics
import urllib.request
from typing import Any

import pytest

from bench.harness import StubProcess, run_cli
from bench.stub_server import LatencySampler

SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def stub() -> Any:
    with StubProcess(latency_mean=0.01, latency_sigma=0.5) as server:
        yield server


def test_chat_answers_are_unique_json_pairs_with_usage(stub: StubProcess) -> None:
    stub.reset()
    body = {
        "model": "stub",
        "messages": [{"role": "user", "content": "make a pair"}],
        "n": 3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "pair", "schema": SCHEMA}},
    }
    seen = set()
    for _ in range(5):
        data = post(stub.url + "/chat/completions", body)
        assert data["object"] == "chat.completion" and len(data["choices"]) == 3
        assert data["usage"]["completion_tokens"] > 0
        for choice in data["choices"]:
            pair = json.loads(choice["message"]["content"])
            assert pair["question"].endswith("?")
            words = len(pair["question"].split()) + len(pair["answer"].split())
            assert 20 <= words <= 60
            seen.add(pair["question"])
    assert len(seen) == 15
    stats = stub.stats()
    assert stats["served"] == 5 and stats["max_inflight"] == 1 and stats["span"] > 0
    assert stats["mean_latency"] > 0


def test_completions_plain_text_and_models(stub: StubProcess) -> None:
    data = post(stub.url + "/completions", {"model": "stub", "prompt": "Once"})
    text = data["choices"][0]["text"]
    assert data["object"] == "text_completion" and 20 <= len(text.split()) <= 60
    with urllib.request.urlopen(stub.url + "/models", timeout=10) as resp:
        assert json.loads(resp.read())["data"][0]["id"] == "stub"


def test_stratified_latencies_have_the_stated_mean() -> None:
    sampler = LatencySampler(0.5, 0.8)
    draws = [sampler.draw() for _ in range(1000)]
    assert statistics.mean(draws) == pytest.approx(0.5, rel=0.02)
    median = statistics.median(draws)  # log-normal: median = mean * exp(-sigma^2 / 2)
    assert median == pytest.approx(0.5 * math.exp(-0.32), rel=0.05)
    assert LatencySampler(0.0, 0.8).draw() == 0.0


def test_tiny_bench_run_through_the_cli(stub: StubProcess) -> None:
    stub.reset()
    res, results = run_cli([stub.url], 50, max_concurrency=8)
    assert results["status"] == "complete" and results["final_lines"] == 50
    assert results["counts"]["failed"] == 0
    stats = stub.stats()
    assert stats["served"] >= 50 and 1 < stats["max_inflight"] <= 8
    assert res.cpu > 0 and res.max_rss_mb > 0


def test_bench_tasks_validate() -> None:
    import subprocess
    import sys

    from bench.harness import BENCH_TASK, REPO, child_env

    for task, extra in (
        (BENCH_TASK, []),
        (REPO / "bench/tasks/bench_vllm/task.yaml", ["--builder-paths", str(REPO / "bench/builders")]),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "fms_dgt.run", "--task-paths", str(task), *extra, "--validate"],
            cwd=REPO,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert "1 task(s) valid" in out.stdout


def test_near_dedup_is_added_when_a_minhash_block_exists(monkeypatch: Any, tmp_path: Any) -> None:
    import fms_dgt.blocks
    from bench import harness

    assert harness.near_dedup_override(tmp_path) is None or "minhash_dedup" in fms_dgt.blocks.BUILTIN_BLOCKS
    monkeypatch.setitem(fms_dgt.blocks.BUILTIN_BLOCKS, "minhash_dedup", "x:Y")
    path = harness.near_dedup_override(tmp_path)
    if path is not None:  # None when the simple builder already runs minhash itself
        assert "type: minhash_dedup" in path.read_text()
    assert "minhash_dedup" in harness.dedup_blocks()


def test_json_answers_are_valid_for_their_schema() -> None:
    """Enums, bounded numbers, arrays of the asked length, nested objects and $ref: a
    builder asking for labels or scores gets them, as from a structured-output server."""
    import jsonschema

    from bench.stub_server import TextMaker

    schema = {
        "type": "object",
        "$defs": {"Tag": {"type": "object", "properties": {"label": {"enum": ["good", "bad"]}}}},
        "properties": {
            "difficulty": {"type": "string", "enum": ["easy", "medium", "hard"]},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 2},
            "requests": {
                "type": "array",
                "items": {"type": "string", "maxLength": 60},
                "minItems": 5,
                "maxItems": 5,
            },
            "tag": {"$ref": "#/$defs/Tag"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
            "question": {"type": "string", "minLength": 200},
        },
        "required": ["difficulty", "score", "requests", "tag"],
    }
    maker = TextMaker(seed=3)
    request = {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
    seen = set()
    for _ in range(30):
        obj = json.loads(maker.answer(request))
        jsonschema.validate(obj, schema)
        assert len(set(obj["requests"])) == 5 and isinstance(obj["maybe"], bool)
        assert obj["question"].endswith("?")
        seen.add(obj["score"])
    assert seen == {1, 2, 3, 4, 5}
