"""End to end through the real CLI on the embedded default model (in-process vLLM, CPU):
the documented example tasks produce sensible, parseable records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.helpers import read_jsonl, run_cli

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_simple_example_task(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli(
        "--task-paths",
        "tasks/core/simple/logical_reasoning/causal",
        "--output-dir",
        str(out),
        "--num-outputs-to-generate",
        "5",
        builders=False,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    task_dir = out / "logical_reasoning_causal"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 5
    assert len({r["id"] for r in final}) == 5
    for record in final:
        assert record["question"].strip().endswith("?") and len(record["question"].split()) >= 5
        assert len(record["answer"].split()) >= 3
        assert record["lineage"]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert record["lineage"]["tokens"]["completion"] > 0
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert [m["role"] for m in formatted[0]["messages"]] == ["system", "user", "assistant"]
    results = json.loads((task_dir / "task_results.json").read_text())
    assert results["status"] == "complete"
    engines = results["engines"]
    assert engines["llm1"]["requests"] >= 5
    assert engines["llm1"]["prompt_tokens"] > 0 and engines["llm1"]["completion_tokens"] > 0
    # the summary table is printed at the end
    assert "logical_reasoning_causal" in proc.stdout and "complete" in proc.stdout


def test_transformation_example_task(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli(
        "--task-paths",
        "tasks/core/transformation/answer_questions",
        "--output-dir",
        str(out),
        builders=False,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = read_jsonl(out / "answer_questions_example" / "final_data.jsonl")
    assert len(final) == 6
    assert all(len(r["answer"].split()) >= 2 for r in final)
    formatted = read_jsonl(out / "answer_questions_example" / "formatted_data.jsonl")
    assert formatted[0]["input"] == final[0]["question"] or {f["input"] for f in formatted} == {
        r["question"] for r in final
    }
