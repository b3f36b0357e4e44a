"""Cost and budgets: what requests cost (the engine block's prices, cached answers free),
and a task that stops at ``max_cost_usd`` / ``max_tokens_total`` / ``max_seconds`` and
continues with a raised limit to the records one uninterrupted run makes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.engines.pricing import KNOWN_PRICES, Pricing, price_for
from tests.support.fault_server import FaultServer, canned_response

from .helpers import read_jsonl, results, run_cli, write_task

# the scripted engine's answers: 10 prompt and 5 completion tokens each
PRICES = {"input_per_mtok": 2000.0, "output_per_mtok": 4000.0}  # $0.02 + $0.02 per request
PER_REQUEST = (10 * 2000.0 + 5 * 4000.0) / 1e6


def _priced(tmp_path: Path, **pricing: Any) -> Path:
    path = tmp_path / "prices.yaml"
    block = {"name": "llm1", "pricing": pricing or PRICES}
    path.write_text(yaml.safe_dump({"builders": {"echo": {"blocks": [block]}}}))
    return path


def test_cost_is_usage_times_prices(tmp_path: Path) -> None:
    task = write_task(tmp_path / "t")
    out = tmp_path / "out"
    r = run_cli("--task-paths", str(task), "--output-dir", str(out), "--config-path", str(_priced(tmp_path)))
    assert r.returncode == 0, r.stderr
    res = results(out)
    engine = res["engines"]["llm1"]
    assert engine["cost_usd"] == pytest.approx(engine["requests"] * PER_REQUEST)
    assert res["cost_usd"] == pytest.approx(engine["cost_usd"])
    assert engine["billed_tokens"] == engine["requests"] * 15
    assert "cost" in r.stdout and f"${res['cost_usd']:.4f}" in r.stdout  # the summary table
    report = subprocess.run(
        [sys.executable, "-m", "fms_dgt.report", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert f"cost         ${res['cost_usd']:.4f} (llm1 ${res['cost_usd']:.4f})" in report


def test_a_hosted_model_has_its_list_price_and_a_local_one_is_free() -> None:
    assert price_for("openai/gpt-4o-mini", None, hosted=True) == KNOWN_PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-mini", None, hosted=False) is None  # a model we serve ourselves
    mine = Pricing(input_per_mtok=1, output_per_mtok=1)
    assert price_for("gpt-4o-mini", mine, hosted=True) is mine  # given prices win


def test_cached_answers_cost_nothing(tmp_path: Path) -> None:
    """Through the real openai engine and HTTP: a second run answered from the response
    cache costs nothing and sends nothing."""
    rc = {"num_outputs_to_generate": 3, "machine_batch_size": 0, "seed": 1, "max_concurrent_calls": 1}
    task = write_task(tmp_path / "t", builder="simple", runner_config=rc)
    cache = tmp_path / "cache.sqlite"
    served = iter(range(10**6))

    def respond(path: str, body: dict[str, Any]) -> dict[str, Any]:
        n = next(served)
        pair = {"question": f"Why does tide {n} turn?", "answer": f"The Moon pulls tide {n} back."}
        return canned_response(path, {**body, "response_format": None}, text=json.dumps(pair))

    with FaultServer(responder=respond) as srv:
        override = tmp_path / "o.yaml"
        override.write_text(
            yaml.safe_dump(
                {
                    "engines": {
                        "type": "openai",
                        "model": "gpt-4o-mini",
                        "base_url": srv.url,
                        "cache": str(cache),
                        "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 3.0},
                    }
                }
            )
        )
        args = ["--task-paths", str(task), "--config-path", str(override)]
        assert run_cli(*args, "--output-dir", str(tmp_path / "a"), builders=False).returncode == 0
        sent = srv.counts["requests"]
        first = results(tmp_path / "a")
        assert first["cost_usd"] == pytest.approx(
            (first["tokens"]["prompt"] + first["tokens"]["completion"] * 3.0) / 1e6
        )
        assert first["cost_usd"] > 0
        r = run_cli(*args, "--output-dir", str(tmp_path / "b"), builders=False)
        assert r.returncode == 0, r.stderr
        again = results(tmp_path / "b")
        assert srv.counts["requests"] == sent  # all from the cache
    assert again["cost_usd"] == 0 and again["engines"]["llm1"]["cached"] > 0


def _stopped_then_continued(tmp_path: Path, flag: str, low: str, high: str, status: str) -> None:
    task = write_task(
        tmp_path / "t", runner_config={"num_outputs_to_generate": 40, "max_concurrent_calls": 4}
    )
    out = tmp_path / "out"
    args = ["--task-paths", str(task), "--output-dir", str(out), "--config-path", str(_priced(tmp_path))]
    r = run_cli(*args, flag, low)
    assert r.returncode == 1, r.stderr
    res = results(out)
    assert res["status"] == status and "raise it and run the same command" in res["message"]
    assert status in r.stdout
    kept = read_jsonl(out / "t1/data.jsonl")
    assert 0 < len(kept) < 40
    r = run_cli(*args, flag, low)  # the same budget: spent already, nothing more is sent
    assert r.returncode == 1 and results(out)["requests"] == res["requests"]
    r = run_cli(*args, flag, high)
    assert r.returncode == 0, r.stderr
    final = read_jsonl(out / "t1/final_data.jsonl")
    assert len(final) == 40 and len({x["id"] for x in final}) == 40
    assert [x["id"] for x in final[: len(kept)]] == [x["id"] for x in kept]  # nothing redone


def test_a_cost_budget_stops_the_task_and_a_raised_one_continues(tmp_path: Path) -> None:
    _stopped_then_continued(tmp_path, "--max-cost-usd", "0.3", "100", "budget_exhausted")
    res = results(tmp_path / "out")
    # the first run stopped within the requests in flight (4 calls) of $0.30
    assert res["cost_usd"] > 0.3


def test_a_cost_budget_is_not_overshot_by_more_than_the_requests_in_flight(tmp_path: Path) -> None:
    task = write_task(
        tmp_path / "t", runner_config={"num_outputs_to_generate": 40, "max_concurrent_calls": 4}
    )
    out = tmp_path / "out"
    prices = str(_priced(tmp_path))
    r = run_cli(
        "--task-paths", str(task), "--output-dir", str(out), "--config-path", prices, "--max-cost-usd", "0.3"
    )
    assert r.returncode == 1
    res = results(out)
    assert 0.3 <= res["cost_usd"] <= 0.3 + 4 * PER_REQUEST + 1e-9, res


def test_a_token_budget(tmp_path: Path) -> None:
    _stopped_then_continued(tmp_path, "--max-tokens-total", "150", "100000", "budget_exhausted")


def test_a_time_limit(tmp_path: Path) -> None:
    # each of the echo builder's calls sleeps 0.1 s
    task = write_task(
        tmp_path / "t",
        runner_config={"num_outputs_to_generate": 200, "max_concurrent_calls": 2, "max_seconds": 1.0},
        slow_every=1,
        slow_seconds=0.1,
    )
    out = tmp_path / "out"
    r = run_cli("--task-paths", str(task), "--output-dir", str(out))
    assert r.returncode == 1, r.stderr
    res = results(out)
    assert res["status"] == "time_limit" and res["total_seconds"] >= 1.0
    data = yaml.safe_load(task.read_text())
    data["runner_config"]["max_seconds"] = 600
    task.write_text(yaml.safe_dump(data))
    assert run_cli("--task-paths", str(task), "--output-dir", str(out)).returncode == 0
    assert len(read_jsonl(out / "t1/final_data.jsonl")) == 200


def test_a_transformation_stopped_by_its_budget_processes_the_rest_when_continued(tmp_path: Path) -> None:
    """The real openai engine over HTTP; the chunks not done when the budget ran out are
    processed when the run continues, and final_data holds every row once, in order."""
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "rows.jsonl").write_text(
        "".join(json.dumps({"question": f"Row {i}?"}) + "\n" for i in range(24))
    )
    task = folder / "task.yaml"
    task.write_text(
        yaml.safe_dump(
            {
                "task_name": "tr",
                "task_description": "t",
                "created_by": "tests",
                "data_builder": "inference",
                "input_field": "question",
                "data": {"data_path": "rows.jsonl"},
                "runner_config": {"transform_batch_size": 2, "max_concurrent_calls": 2},
            }
        )
    )
    out = tmp_path / "out"
    with FaultServer() as srv:
        args = ["--task-paths", str(task), "--output-dir", str(out), "--engine", "openai"]
        args += ["--base-url", srv.url, "--model", "fake"]
        r = run_cli(*args, "--max-tokens-total", "60", builders=False)
        assert r.returncode == 1, r.stderr
        stopped = results(out, "tr")
        assert stopped["status"] == "budget_exhausted"
        assert 60 <= stopped["engines"]["llm1"]["billed_tokens"] <= 60 + 2 * 2 * 12  # + requests in flight
        r = run_cli(*args, builders=False)
        assert r.returncode == 0, r.stderr
    final = read_jsonl(out / "tr/final_data.jsonl")
    assert [x["row"]["question"] for x in final] == [f"Row {i}?" for i in range(24)]  # once each, in order


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-cost-usd", "-1"), ("--max-tokens-total", "0"), ("--max-seconds", "-5")]
)
def test_budgets_must_be_positive(tmp_path: Path, flag: str, value: str) -> None:
    task = write_task(tmp_path / "t")
    r = run_cli("--task-paths", str(task), "--output-dir", str(tmp_path / "o"), flag, value)
    assert r.returncode == 2 and flag in r.stderr and "greater than 0" in r.stderr, r.stderr
