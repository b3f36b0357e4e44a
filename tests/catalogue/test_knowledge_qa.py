"""The ``knowledge_qa`` builder: its example on the real default model, and against a fake
server the mechanics a 135M model cannot show reliably (multiple choice, rejections with the
reason, the same chunk for the same call index after a resume)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.blocks.grounding import AnswerSupported
from fms_dgt.config.overrides import Overrides
from fms_dgt.runtime import Outcome, Runtime
from fms_dgt.sources.documents import DocumentsConfig, load_documents
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer, canned_response

EXAMPLE = REPO / "tasks/examples/knowledge_qa"


def _documents_text() -> dict[str, str]:
    config = yaml.safe_load((EXAMPLE / "task.yaml").read_text())["documents"]
    source = load_documents(DocumentsConfig(**config), EXAMPLE)
    return {d.file.relative_to(EXAMPLE).as_posix(): d.text for d in source.documents}


def _check_lineage(record: dict[str, Any], texts: dict[str, str]) -> None:
    where = record["lineage"]["document"]
    assert record["context"] == texts[where["file"]][where["start"] : where["end"]]
    assert isinstance(where["chunk"], int) and where["title"] == record["title"]


@pytest.mark.vllm
def test_the_example_runs_on_the_default_model(run_example: RunExample) -> None:
    rt, outcome = run_example(EXAMPLE / "task.yaml", target=2)
    assert outcome.status == "complete", outcome.message
    folder = rt.output_dir / "examples/knowledge_qa"
    final = read_jsonl(folder / "final_data.jsonl")
    assert len(final) == 2
    texts = _documents_text()
    task = rt.prepared[0].task
    for record in final:
        assert record["domain"] == "earth science" and record["question_style"] == "FRQ"
        assert record["question"].endswith("?") and record["answer"] and record["options"] == []
        assert AnswerSupported().check(record) is None  # the support filter held
        _check_lineage(record, texts)
        lineage = record["lineage"]
        assert lineage["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and lineage["prompt_template"]
        # the chunk is the one planned for the call's index (so a resumed run asks the same)
        assert lineage["document"] == task.chunk_for(lineage["request_idx"]).lineage(EXAMPLE)
    for rejected in rejected_records(folder):  # a small model's answers often are not
        assert rejected["reason"] and rejected["record"]["lineage"]["document"]["file"] in texts
        if rejected["block"] == "supported":
            assert rejected["reason"].startswith(("the answer is not supported", "the answer has a number"))


def rejected_records(folder: Path) -> list[dict[str, Any]]:
    path = folder / "rejected.jsonl"
    return read_jsonl(path) if path.exists() else []


# ---- against a fake server --------------------------------------------------------------

_SENTENCE = re.compile(r"[A-Z][^.!?\"\n:;]*?[a-z][.]")


def _passage(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content.split('"""')[1].replace("\n", " ")


class Responder:
    """Answers like a well-behaved model: a question and an answer copied from the passage;
    every ``bad_every``-th request answers with something the passage does not say, and
    multiple-choice answers repeat an option every ``repeat_every``-th request."""

    def __init__(self, bad_every: int = 0, repeat_every: int = 0) -> None:
        self.n = 0
        self.bad_every, self.repeat_every = bad_every, repeat_every
        self.prompts: list[str] = []

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        self.prompts.append(body["messages"][-1]["content"])
        sentence = _SENTENCE.search(_passage(body))
        fact = sentence.group(0) if sentence else "It is stated."
        if self.bad_every and self.n % self.bad_every == 0:
            fact = "Penguins migrate across deserts every winter."
        question = f"Which fact does passage number {self.n} state?"
        schema = body["response_format"]["json_schema"]["schema"]
        if "options" in schema["properties"]:
            options = ["Wrong one here.", "Another wrong one.", fact, "A third wrong one."]
            if self.repeat_every and self.n % self.repeat_every == 0:
                options[3] = options[0]
            answer = {"question": question, "options": options, "correct": "C"}
        else:
            answer = {"question": question, "answer": fact}
        return canned_response(path, {**body, "response_format": None}, text=json.dumps(answer))


def _task(tmp_path: Path, name: str, **changes: Any) -> Path:
    data = yaml.safe_load((EXAMPLE / "task.yaml").read_text())
    data["documents"]["path"] = str(EXAMPLE / "documents")
    data.update(task_name=name, **changes)
    path = tmp_path / name / "task.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(task: Path, url: str, out: Path, target: int) -> tuple[Runtime, Outcome]:
    engine = {"type": "openai", "model": "fake", "base_url": url}
    overrides = Overrides(engine=engine, runner={"num_outputs_to_generate": target})
    rt = Runtime([str(task)], [], output_dir=out, overrides=overrides)
    rt.prepare()
    return rt, asyncio.run(rt.run())[0]


def test_unsupported_answers_are_rejected_with_the_reason(tmp_path: Path) -> None:
    responder = Responder(bad_every=3)
    seeds = [{"question": "Why do rivers wind more near the sea?", "answer": "Flat land lets bends grow."}]
    task = _task(tmp_path, "frq", seed_examples=seeds)
    with FaultServer(responder=responder) as srv:
        _, outcome = _run(task, srv.url, tmp_path / "out", target=6)
    assert outcome.status == "complete", outcome.message
    final = read_jsonl(tmp_path / "out/frq/final_data.jsonl")
    texts = {str(EXAMPLE / k): v for k, v in _documents_text().items()}
    assert len(final) == 6
    for record in final:
        assert record["answer"] in record["context"].replace("\n", " ")
        where = record["lineage"]["document"]
        assert record["context"] == texts[where["file"]][where["start"] : where["end"]]
    rejected = [r for r in read_jsonl(tmp_path / "out/frq/rejected.jsonl") if r["block"] == "supported"]
    assert rejected and all("penguins" in r["reason"] and "min_support 60%" in r["reason"] for r in rejected)
    assert all(r["record"]["lineage"]["document"]["file"] for r in rejected)
    # the seed example is shown, and the domain
    assert all("Question: Why do rivers wind more" in p and "earth science" in p for p in responder.prompts)


def test_multiple_choice_records_keep_the_correct_option_as_the_answer(tmp_path: Path) -> None:
    responder = Responder(repeat_every=4)
    seeds = [
        {
            "question": "Which layer of the atmosphere is closest to the ground?",
            "answer": "The troposphere",
            "options": ["The stratosphere", "The troposphere", "The mesosphere", "The exosphere"],
        }
    ]
    task = _task(tmp_path, "mcq", question_style="MCQ", domain="geology", seed_examples=seeds)
    with FaultServer(responder=responder) as srv:
        _, outcome = _run(task, srv.url, tmp_path / "out", target=4)
    assert outcome.status == "complete", outcome.message
    for record in read_jsonl(tmp_path / "out/mcq/final_data.jsonl"):
        assert record["question_style"] == "MCQ" and record["domain"] == "geology"
        assert len(record["options"]) == 4 and record["answer"] == record["options"][2]
    repeats = [r for r in read_jsonl(tmp_path / "out/mcq/rejected.jsonl") if r["block"] == "parse"]
    assert repeats and all("the options repeat" in r["reason"] for r in repeats)
    assert "B. The troposphere" in responder.prompts[0] and "Correct: B" in responder.prompts[0]


def test_a_resumed_run_grounds_each_call_in_the_same_chunk(tmp_path: Path) -> None:
    def plan(out: Path, name: str) -> dict[int, dict[str, Any]]:
        records = read_jsonl(out / name / "data.jsonl")
        return {r["lineage"]["request_idx"]: r["lineage"]["document"] for r in records}

    with FaultServer(responder=Responder()) as srv:
        task = _task(tmp_path, "plan")
        _run(task, srv.url, tmp_path / "once", target=8)
        _run(task, srv.url, tmp_path / "twice", target=4)
        rt, outcome = _run(task, srv.url, tmp_path / "twice", target=8)  # resumed, extended
    assert outcome.status == "complete", outcome.message
    once, twice = plan(tmp_path / "once", "plan"), plan(tmp_path / "twice", "plan")
    common = once.keys() & twice.keys()
    # which calls' records were kept differs between runs (a call may make several records,
    # in-flight ones are cut at the target), so ask for a real overlap, not a fixed count
    assert len(common) >= max(4, min(len(once), len(twice)) // 2), (sorted(once), sorted(twice))
    assert all(once[i] == twice[i] for i in common)
    # a round of 7 calls visits each of the 7 chunks once (a call may make several records)
    first_round = [d for i, d in once.items() if i < 7]
    assert len(first_round) >= 3
    assert len({(d["file"], d["chunk"]) for d in first_round}) == len(first_round)
    task_obj = rt.prepared[0].task
    assert all(task_obj.chunk_for(i).lineage(task.parent) == d for i, d in twice.items())
