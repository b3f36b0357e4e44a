"""The ``genstruct`` builder: its example on the real default model, and against a fake
server the mechanics a 135M model cannot show reliably (in-context examples in the prompt,
a user message that points at the document rejected, exact lineage of every chunk)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.config.overrides import Overrides
from fms_dgt.runtime import Outcome, Runtime
from fms_dgt.sources.documents import DocumentsConfig, load_documents
from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer, canned_response

EXAMPLE = REPO / "tasks/examples/genstruct"


def _texts(base: Path = EXAMPLE) -> dict[tuple[str, int | None], str]:
    """Each document's text by (file, record), as the lineage names them."""
    config = yaml.safe_load((EXAMPLE / "task.yaml").read_text())["documents"]
    source = load_documents(DocumentsConfig(**config), EXAMPLE)
    return {(d.file.relative_to(base).as_posix(), d.record): d.text for d in source.documents}


def _check(record: dict[str, Any], texts: dict[tuple[str, int | None], str]) -> None:
    where = record["lineage"]["document"]
    text = texts[(where["file"], where.get("record"))]
    assert record["content"] == text[where["start"] : where["end"]]
    assert record["title"] == where["title"] and record["user"] and record["assistant"]


@pytest.mark.vllm
def test_the_example_runs_on_the_default_model(run_example: RunExample) -> None:
    rt, outcome = run_example(EXAMPLE / "task.yaml", target=2)
    assert outcome.status == "complete", outcome.message
    folder = rt.output_dir / "examples/genstruct"
    final = read_jsonl(folder / "final_data.jsonl")
    assert len(final) == 2
    texts = _texts()
    titles = {"How a bicycle stays upright", "Why bread rises", "Why onions make you cry"}
    task = rt.prepared[0].task
    for record in final:
        _check(record, texts)
        assert record["title"] in titles
        assert record["user"][-1] in "?." and not re.search(
            r"\b(the|this) (document|text)\b", record["user"], re.I
        )
        lineage = record["lineage"]
        assert (
            lineage["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and lineage["tokens"]["completion"] > 0
        )
        assert lineage["document"] == task.chunk_for(lineage["request_idx"]).lineage(EXAMPLE)
    for rejected in rejected_records(folder):
        assert (
            rejected["block"] in ("grounded", "stands_alone", "unique_user", "dedup") and rejected["reason"]
        )


def rejected_records(folder: Path) -> list[dict[str, Any]]:
    path = folder / "rejected.jsonl"
    return read_jsonl(path) if path.exists() else []


# ---- against a fake server --------------------------------------------------------------

_SENTENCE = re.compile(r"[A-Z][^.!?\"\n:;]*?[a-z][.]")


class Responder:
    """A question about the document's title and a reply copied from its content; every
    third user message points at "the passage" (which the builder's filter rejects)."""

    def __init__(self) -> None:
        self.n = 0
        self.prompts: list[str] = []

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        prompt = body["messages"][-1]["content"]
        self.prompts.append(prompt)
        title = re.search(r"^# (.+)$", prompt, re.M).group(1)  # type: ignore[union-attr]
        content = prompt.split(f"# {title}\n\n", 1)[1].replace("\n", " ")
        fact = _SENTENCE.search(content)
        question = f"Can you tell me about {title.lower()} for case {self.n}?"
        if self.n % 3 == 0:
            question = f"What does the passage say about case {self.n}?"
        answer = {"question": question, "answer": fact.group(0) if fact else "It is stated there."}
        return canned_response(path, {**body, "response_format": None}, text=json.dumps(answer))


def _run(task: Path, url: str, out: Path, target: int) -> tuple[Runtime, Outcome]:
    engine = {"type": "openai", "model": "fake", "base_url": url}
    rt = Runtime(
        [str(task)],
        [],
        output_dir=out,
        overrides=Overrides(engine=engine, runner={"num_outputs_to_generate": target}),
    )
    rt.prepare()
    return rt, asyncio.run(rt.run())[0]


def test_exchanges_keep_their_chunk_and_stand_alone(tmp_path: Path) -> None:
    data = yaml.safe_load((EXAMPLE / "task.yaml").read_text())
    data["documents"]["path"] = [str(EXAMPLE / p) for p in data["documents"]["path"]]
    data["seed_examples"] = [
        {"user": "Why is the sea salty at all?", "assistant": "Rivers carry dissolved salts into it."}
    ]
    data["runner_config"]["seed_batch_size"] = 1
    task = tmp_path / "task" / "task.yaml"
    task.parent.mkdir()
    task.write_text(yaml.safe_dump(data))
    responder = Responder()
    with FaultServer(responder=responder) as srv:
        _, outcome = _run(task, srv.url, tmp_path / "out", target=6)
    assert outcome.status == "complete", outcome.message
    folder = tmp_path / "out/examples/genstruct"
    final = read_jsonl(folder / "final_data.jsonl")
    texts = {(str(EXAMPLE / f), r): t for (f, r), t in _texts().items()}
    assert len(final) == 6
    for record in final:
        _check(record, texts)
        assert record["assistant"] in record["content"].replace("\n", " ")
        assert "passage" not in record["user"]
    files = {r["lineage"]["document"]["file"] for r in final}
    assert any(f.endswith("kitchen.jsonl") for f in files) and any(f.endswith("bicycles.md") for f in files)
    rejected = read_jsonl(folder / "rejected.jsonl")
    assert rejected and all(
        r["block"] == "stands_alone" and "passage" in r["record"]["user"] for r in rejected
    )
    assert all("Question: Why is the sea salty at all?" in p for p in responder.prompts)  # the seed is shown
