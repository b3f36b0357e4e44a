"""End to end through the real CLI on the embedded default model (in-process vLLM, CPU):
the documented example tasks produce sensible, parseable records, with accounting.

Both example tasks run in one CLI invocation (as a user would run a folder of tasks): their
engines share one loaded model, and the suite pays for loading vLLM once instead of twice."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.core.helpers import read_jsonl, run_cli

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

GENERATION = "tasks/core/simple/logical_reasoning/causal"
TRANSFORMATION = "tasks/core/transformation/answer_questions"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("e2e") / "out"
    args = ["--task-paths", GENERATION, TRANSFORMATION, "--output-dir", str(out)]
    proc = run_cli(*args, "--num-outputs-to-generate", "5", builders=False, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, out


def _results(task_dir: Path) -> dict:
    return json.loads((task_dir / "task_results.json").read_text())


def test_generation_example(run) -> None:
    proc, out = run
    task_dir = out / "core/simple/logical_reasoning/causal"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 5
    assert len({r["id"] for r in final}) == 5
    assert len({r["question"] for r in final}) == 5
    for record in final:
        assert record["question"].strip().endswith("?") and len(record["question"].split()) >= 5
        assert len(record["answer"].split()) >= 3
        assert record["lineage"]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert record["lineage"]["tokens"]["completion"] > 0
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert len(formatted) == 5
    assert [m["role"] for m in formatted[0]["messages"]] == ["system", "user", "assistant"]
    results = _results(task_dir)
    assert results["status"] == "complete"
    assert results["counts"]["final"] == 5
    llm = results["engines"]["llm1"]
    assert llm["requests"] >= 5 and llm["failed"] == 0
    assert llm["prompt_tokens"] > 0 and llm["completion_tokens"] > 0
    assert results["requests"] == llm["requests"]
    assert results["tokens"] == {"prompt": llm["prompt_tokens"], "completion": llm["completion_tokens"]}
    # the summary table is printed at the end
    assert "core/simple/logical_reasoning/causal" in proc.stdout and "complete" in proc.stdout


def test_transformation_example(run) -> None:
    _, out = run
    task_dir = out / "answer_questions_example"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 6
    assert all(len(r["answer"].split()) >= 2 for r in final)
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert {f["input"] for f in formatted} == {r["question"] for r in final}
    results = _results(task_dir)
    assert results["status"] == "complete"
    # this task's own requests only, although the model is shared with the other task
    assert results["engines"]["llm1"]["requests"] == 6
    assert results["tokens"]["completion"] > 0


def test_the_console_shows_the_run_not_the_engine(run) -> None:
    """vLLM's start-up warnings, torch's and the engine-core child's output go to the run's
    log file; the console holds our lines and the summary (a screenful)."""
    proc, out = run
    console = (proc.stdout + proc.stderr).splitlines()
    assert len(console) <= 25, "\n".join(console)
    theirs = [line for line in console if " fms_dgt." not in line]  # our loggers may name vLLM
    noisy = [line for line in theirs if "EngineCore" in line or "vllm" in line.lower() or "Warning" in line]
    assert not noisy, noisy
    log = (out / "fms_dgt.log").read_text()
    assert "EngineCore" in log or "vllm" in log.lower()  # kept, not lost
    assert f"log: {out / 'fms_dgt.log'}" in proc.stdout
