"""llm_judge: mechanics on a scripted engine (scores, thresholds, failures, lineage, token
accounting, YAML wiring through the CLI) and one real judgement on in-process vLLM."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.blocks.base import FilterPostprocessor
from fms_dgt.blocks.judge import LLMJudge
from tests.blocks.conftest import QA
from tests.core.helpers import read_jsonl, results, run_cli, write_task
from tests.support.judge_engine import JudgeEngine

RUBRIC = "The answer is correct and the question is clear."


def _judge(**kw: Any) -> LLMJudge:
    engine = kw.pop("engine", None) or JudgeEngine(max_retries=0, backoff_base=0.01)
    return LLMJudge(name="judge", engine=engine, rubric=RUBRIC, **kw)


def test_keeps_high_scores_and_stores_verdict_on_record() -> None:
    judge = _judge(threshold=4)
    good, bad = QA(question="a good question?", answer="yes"), QA(question="meh?", answer="no")
    assert asyncio.run(judge.acheck(good)) is None
    reason = asyncio.run(judge.acheck(bad))
    assert reason is not None and reason.startswith("judge score 2 < 4")
    assert good.lineage["judge"]["judge"] == {"score": 5, "reason": "good enough"}
    assert bad.lineage["judge"]["judge"]["score"] == 2
    # a lower threshold keeps both
    assert asyncio.run(_judge(threshold=2).acheck(bad)) is None


def test_prompt_shows_rubric_and_fields() -> None:
    judge = _judge(fields=["question"], min_score=0, max_score=10, threshold=7)
    req = judge.request(QA(question="Why?", answer="secret"))
    content = req.messages[-1]["content"]  # type: ignore[index]
    assert RUBRIC in content and "question: Why?" in content and "secret" not in content
    assert "from 0" in req.messages[0]["content"] and "10" in req.messages[0]["content"]  # type: ignore[index]
    assert req.constraint.json_schema["properties"]["score"]["enum"] == list(range(11))  # type: ignore[union-attr]
    assert req.params.temperature == 0.0
    custom = _judge(prompt="R={{ rubric }} Q={{ record.question }}", system=None)
    assert custom.request(QA(question="q1")).messages == [{"role": "user", "content": f"R={RUBRIC} Q=q1"}]


def test_failed_request_rejects_or_keeps() -> None:
    failing = JudgeEngine(max_retries=0, fail_every=1, backoff_base=0.01)
    reason = asyncio.run(_judge(engine=failing).acheck(QA(question="good")))
    assert reason is not None and reason.startswith("judge failed")
    lenient = _judge(engine=JudgeEngine(max_retries=0, fail_every=1, backoff_base=0.01), on_error="keep")
    assert asyncio.run(lenient.acheck(QA(question="good"))) is None


def test_as_postprocessor_uses_blocking_api() -> None:
    engine = JudgeEngine()
    try:
        pp = FilterPostprocessor(_judge(engine=engine))
        rows = [{"question": "good one"}, {"question": "poor one"}]
        out = list(pp.process(rows))
        assert [r["question"] for r in out] == ["good one"]
        assert out[0]["lineage"]["judge"]["judge"]["score"] == 5
    finally:
        engine.close()


def test_bad_config() -> None:
    engine = JudgeEngine()
    with pytest.raises(ValueError, match="engine"):
        LLMJudge(rubric=RUBRIC)
    with pytest.raises(ValueError, match="rubric"):
        LLMJudge(engine=engine)
    with pytest.raises(ValueError, match="outside the scale"):
        LLMJudge(engine=engine, rubric=RUBRIC, threshold=9)
    with pytest.raises(ValueError, match="template"):
        LLMJudge(engine=engine, rubric=RUBRIC, prompt="{{ broken")


def _override(tmp_path: Path, judge: dict[str, Any]) -> Path:
    path = tmp_path / "override.yaml"
    blocks = [
        {"name": "llm1", "class_path": "tests.support.judge_engine:JudgeEngine", "max_concurrency": 16},
        {"name": "judge", "type": "llm_judge", "rubric": RUBRIC, "threshold": 4, **judge},
    ]
    path.write_text(yaml.safe_dump({"builders": {"echo": {"blocks": blocks}}}))
    return path


def test_cli_judge_on_builder_engine_block(tmp_path: Path) -> None:
    task = write_task(tmp_path / "task", runner_config={"num_outputs_to_generate": 8})
    out = tmp_path / "out"
    proc = run_cli(
        "--task-paths",
        str(task),
        "--output-dir",
        str(out),
        "--config-path",
        str(_override(tmp_path, {"engine": "llm1"})),
    )
    assert proc.returncode == 0, proc.stderr
    data = read_jsonl(out / "t1" / "final_data.jsonl")
    assert len(data) == 8 and all(r["lineage"]["judge"]["judge"]["score"] == 5 for r in data)
    rejected = [r for r in read_jsonl(out / "t1" / "rejected.jsonl") if r["block"] == "judge"]
    assert rejected and all(r["record"]["lineage"]["judge"]["judge"]["score"] == 2 for r in rejected)
    res = results(out)
    assert res["rejected_by_block"]["judge"]
    # the judge's 20-token prompts are counted with the task's tokens
    judged = len(read_jsonl(out / "t1" / "data.jsonl")) + len(rejected)  # data may exceed the target
    assert res["tokens"]["prompt"] == 10 * res["counts"]["calls"] + 20 * judged


def test_cli_judge_with_inline_engine_and_unknown_name(tmp_path: Path) -> None:
    task = write_task(tmp_path / "task", runner_config={"num_outputs_to_generate": 4})
    inline = {"engine": {"name": "judge_llm", "class_path": "tests.support.judge_engine:JudgeEngine"}}
    proc = run_cli(
        "--task-paths",
        str(task),
        "--output-dir",
        str(tmp_path / "o1"),
        "--config-path",
        str(_override(tmp_path, inline)),
    )
    assert proc.returncode == 0, proc.stderr
    engines = results(tmp_path / "o1")["engines"]
    assert engines["judge_llm"]["requests"] > 0
    bad = _override(tmp_path, {"engine": "llm2"})
    proc = run_cli(
        "--task-paths",
        str(task),
        "--output-dir",
        str(tmp_path / "o2"),
        "--config-path",
        str(bad),
        "--validate",
    )
    assert proc.returncode == 2
    assert "'llm2' is not an engine block" in proc.stderr and "llm1" in proc.stderr


@pytest.mark.vllm
def test_real_judge_on_default_model(vllm_engine: Any) -> None:
    """SmolLM2-135M is a weak judge; what must hold on a real model is the mechanics: a
    constrained, parsed verdict in range on every record, stored on it."""
    judge = LLMJudge(
        name="judge", engine=vllm_engine, rubric="The answer correctly answers the question.", threshold=1
    )
    records = [
        QA(question="What is the capital of France?", answer="Paris."),
        QA(question="How many legs does a spider have?", answer="Eight."),
    ]
    for record in records:
        assert judge.check(record) is None  # threshold 1: every valid verdict keeps
        verdict = record.lineage["judge"]["judge"]
        assert 1 <= verdict["score"] <= 5 and isinstance(verdict["reason"], str)
    print(json.dumps([r.lineage["judge"] for r in records]))
