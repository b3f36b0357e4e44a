"""IBM fms-dgt conversation task files (``core/conversation``, ``public/rag/conversation``)
under our ``conversation`` builder, against a scripted loopback OpenAI-compatible server.

The task files in ``fmsdgt/`` are written in their format for these tests (data under
``fmsdgt/data``, reached through ``${DGT_DATA_DIR}`` as theirs are). The server's answers are
derived from the prompts alone, so two runs that ask the same things get the same answers:

- a scenario is ``Case <hash of its prompt>``;
- a user message repeats the ``STEER-...`` tag of the pattern hint in its prompt and the case;
- an answer names the case and the turn.

Checked: the patterns' hints steer the user messages (a weight-0 pattern is never drawn), an
end pattern ends the conversation (never before ``min_turns``), the documents drawn for a
conversation (one group each) are in the scenario and assistant prompts and in the record,
seed scenarios are shown to the scenario step, a resumed run is the run it continues, the
native spelling of the same task draws the same, and the formatters' output.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.config.overrides import Overrides
from fms_dgt.formatters.conversation import ConversationFormatter, GroundedConversationFormatter
from fms_dgt.run import main
from fms_dgt.runtime import Outcome, Runtime
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer, canned_response

HERE = Path(__file__).parent / "fmsdgt"
DATA = HERE / "data"
CASE = re.compile(r"[Cc]ase ([0-9a-f]{8})")
STEER = re.compile(r"STEER-[A-Z]+")
CHAT_TAGS = {
    "home/new_question": "STEER-NEW",
    "home/follow_up": "STEER-FOLLOW",
    "home/never": "STEER-NEVER",
    "home/goodbye": "STEER-BYE",
}
RAG_TAGS = {"rag/factoid": "STEER-FACT", "rag/explanation": "STEER-WHY", "rag/termination": "STEER-BYE"}
DOCUMENTS = {d["id"]: d for d in map(json.loads, (DATA / "documents.jsonl").read_text().splitlines())}


class Scripted:
    """Answers as the scenario writer, the person and the assistant, from the prompt alone;
    keeps every request body."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.bodies.append(body)
        messages = body["messages"]
        last = messages[-1]["content"]
        if "Describe in one or two sentences a situation" in last:
            text = f"Case {_digest(last)}: someone needs advice."
        elif "You play a person" in last:
            case = CASE.search(last).group(1)  # type: ignore[union-attr]
            turn = last.count("\nPerson: ") + 1
            tags = STEER.findall(last)
            text = f"{tags[-1] if tags else 'NONE'} for case {case}, message {turn}?"
        else:
            users = [m["content"] for m in messages if m["role"] == "user"]
            case = CASE.search(users[0]).group(1)  # type: ignore[union-attr]
            text = f"Answer {len(users)} for case {case}."
        return canned_response(path, body, text)

    def scenario_prompts(self) -> dict[str, str]:
        """Case id -> the scenario prompt that made it."""
        prompts = [b["messages"][-1]["content"] for b in self.bodies]
        return {_digest(p): p for p in prompts if "Describe in one or two sentences a situation" in p}

    def assistant_requests(self, case: str) -> list[list[dict[str, str]]]:
        out = []
        for body in self.bodies:
            messages = body["messages"]
            first = next((m["content"] for m in messages if m["role"] == "user"), "")
            if "You play a person" not in first and "Describe in" not in first and f"case {case}" in first:
                out.append(messages)
        return out


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DGT_DATA_DIR", str(DATA))


def _run(task: Path, out: Path, url: str, target: int) -> tuple[Runtime, Outcome]:
    engine = {"type": "openai", "base_url": url, "model": "fake", "max_retries": 0}
    runner = {"num_outputs_to_generate": target, "max_concurrent_calls": 1, "seed": 7}
    rt = Runtime([str(task)], [], output_dir=out, overrides=Overrides(engine=engine, runner=runner))
    rt.prepare()
    (outcome,) = asyncio.run(rt.run())
    assert outcome.status == "complete", outcome.message
    return rt, outcome


def test_their_files_validate_and_say_what_is_unused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--validate", "--no-progress", "--task-paths", str(HERE)]) == 0
    err = capsys.readouterr().err
    assert "rag/task.yaml:68: field 'max_retries' is accepted but not used" in err, err
    assert "chit_chat/task.yaml:15: field 'generator' is accepted but not used (also lines 24, 46, 48)" in err
    assert "field 'limit' is accepted but not used" in err and "field 'weight'" in err


def test_patterns_steer_the_user_and_end_the_conversation(tmp_path: Path) -> None:
    script = Scripted()
    with FaultServer(responder=script) as server:
        rt, _ = _run(HERE / "chit_chat", tmp_path / "out", server.url, target=6)
    task_dir = rt.output_dir / "compat/chit_chat"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 6
    personas = [json.loads(line) for line in (DATA / "personas.jsonl").read_text().splitlines()]
    roles = {p["role"] for p in personas}
    scenarios = script.scenario_prompts()
    for record in final:
        patterns = record["lineage"]["patterns"]
        users = [m["content"] for m in record["messages"] if m["role"] == "user"]
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"] * record["num_turns"]
        assert len(patterns) == len(users) == record["num_turns"]
        for pattern, message in zip(patterns, users):  # each hint steered its message
            assert message.startswith(CHAT_TAGS[pattern] + " for case "), (pattern, message)
        assert "home/never" not in patterns  # weight 0
        assert "home/goodbye" not in patterns[:-1] and "home/goodbye" not in patterns[:1]  # min_turns 2
        if patterns[-1] == "home/goodbye":
            assert record["ended_by"] == "controller" and 2 <= record["num_turns"] <= 4
        else:
            assert record["ended_by"] == "length" and record["num_turns"] == 4
        assert record["persona"].split(";")[0].removeprefix("role: ") in roles
        assert "goals: " in record["persona"] and "style_override" not in record["persona"].split("goals")[0]
        case = CASE.search(record["scenario"]).group(1)  # type: ignore[union-attr]
        prompt = scenarios[case]  # the scenario step was shown num_icl_examples: 2 seed scenarios
        assert prompt.count("Seed scenario ") == 2 and len(record["lineage"]["icl_ids"]) == 2
        assert record["persona"] in prompt
    assert {r["ended_by"] for r in final} == {"controller", "length"}
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert formatted == [{"conversation_id": r["id"], "messages": r["messages"]} for r in final]


def test_rag_documents_are_in_the_prompts_and_the_record(tmp_path: Path) -> None:
    script = Scripted()
    with FaultServer(responder=script) as server:
        rt, _ = _run(HERE / "rag", tmp_path / "out", server.url, target=6)
    task_dir = rt.output_dir / "compat/rag"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 6
    scenarios = script.scenario_prompts()
    domains = set()
    for record in final:
        documents = record["documents"]
        assert len(documents) == 2 and len({d["id"] for d in documents}) == 2
        for document in documents:  # short documents: one chunk each, the whole text
            source = DOCUMENTS[document["id"]]
            assert document == {"id": source["id"], "title": source["title"], "text": source["text"]}
        groups = {DOCUMENTS[d["id"]]["domain"] for d in documents}
        assert len(groups) == 1  # both from the group drawn for the conversation
        domains |= groups
        lineage = record["lineage"]["documents"]
        assert [entry["id"] for entry in lineage] == [d["id"] for d in documents]
        for entry in lineage:
            assert entry["file"].endswith("documents.jsonl") and entry["chunk"] == 0
            assert list(DOCUMENTS)[entry["record"]] == entry["id"]
        case = CASE.search(record["scenario"]).group(1)  # type: ignore[union-attr]
        scenario_prompt = scenarios[case]
        assert all(d["text"] in scenario_prompt for d in documents)
        assert "Seed grounded scenario" in scenario_prompt  # the seeds' rag/scenario steps
        asked = script.assistant_requests(case)
        assert len(asked) == record["num_turns"]
        for messages in asked:  # the assistant answers from the documents
            assert messages[0]["role"] == "system"
            assert all(d["text"] in messages[0]["content"] for d in documents)
        for pattern, message in zip(record["lineage"]["patterns"], record["messages"][::2]):
            assert message["content"].startswith(RAG_TAGS[pattern])
    assert domains == {"cycling", "hiking"}
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert formatted == [
        {"conversation_id": r["id"], "messages": r["messages"], "documents": r["documents"]} for r in final
    ]


def _by_call(records: list[dict[str, Any]]) -> dict[int, Any]:
    return {
        r["lineage"]["request_idx"]: (
            r["persona"],
            r["scenario"],
            r["messages"],
            r["documents"],
            r["lineage"]["patterns"],
            r["lineage"]["documents"],
            r["lineage"]["icl_ids"],
        )
        for r in records
    }


def test_a_resumed_run_continues_exactly(tmp_path: Path) -> None:
    with FaultServer(responder=Scripted()) as server:
        rt, _ = _run(HERE / "rag", tmp_path / "resumed", server.url, target=3)
        first = read_jsonl(rt.output_dir / "compat/rag/data.jsonl")
        rt, _ = _run(HERE / "rag", tmp_path / "resumed", server.url, target=6)  # the same output dir
        resumed = read_jsonl(rt.output_dir / "compat/rag/data.jsonl")
        rt, _ = _run(HERE / "rag", tmp_path / "fresh", server.url, target=6)
        fresh = read_jsonl(rt.output_dir / "compat/rag/data.jsonl")
    assert resumed[: len(first)] == first  # kept as they were
    assert len(_by_call(resumed)) == len(resumed) == 6  # no call made twice
    assert _by_call(resumed) == _by_call(fresh)  # the same documents, patterns and persona per call


def test_our_spelling_of_the_same_task_draws_the_same(tmp_path: Path) -> None:
    theirs = yaml.safe_load((HERE / "rag/task.yaml").read_text())
    personas = [json.loads(line) for line in (DATA / "personas.jsonl").read_text().splitlines()]
    flow = theirs["iteration_stages"][0]
    ours = {
        "task_name": "compat/rag",
        "task_description": theirs["task_description"],
        "created_by": "tests",
        "data_builder": "conversation",
        "min_turns": 2,
        "max_turns": 3,
        "personas": personas,
        "user_patterns": flow["patterns"],
        "end_patterns": flow["termination_patterns"],
        "documents": {"path": str(DATA / "documents.jsonl"), "chunk_tokens": 120, "overlap_tokens": 12},
        "grounding": {"documents_per_conversation": 2, "group_by": "domain"},
        "seed_datastore": {"data_path": str(DATA / "rag_seeds.jsonl")},
        "formatter": {"type": "grounded_conversation"},
    }
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours/task.yaml").write_text(yaml.safe_dump(ours, sort_keys=False))
    with FaultServer(responder=Scripted()) as server:
        rt, _ = _run(HERE / "rag", tmp_path / "theirs_out", server.url, target=4)
        theirs_records = read_jsonl(rt.output_dir / "compat/rag/final_data.jsonl")
        rt, _ = _run(tmp_path / "ours", tmp_path / "ours_out", server.url, target=4)
        ours_records = read_jsonl(rt.output_dir / "compat/rag/final_data.jsonl")
    assert _by_call(ours_records) == _by_call(theirs_records)


def test_the_formatters() -> None:
    record = {
        "id": "abc",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."},
        ],
        "documents": [{"id": "d1", "title": "T", "text": "Body."}],
    }
    assert ConversationFormatter().format(record) == {
        "conversation_id": "abc",
        "messages": record["messages"],
    }
    assert ConversationFormatter(system=False).format(record)["messages"] == record["messages"][1:]
    grounded = GroundedConversationFormatter().format(record)
    assert grounded["documents"] == record["documents"] and grounded["conversation_id"] == "abc"


def test_the_documented_conversation_tasks_are_valid() -> None:
    """The task.yaml examples of the conversation section of docs/builders.md name keys and
    values the conversation task accepts (their data files are the reader's)."""
    from fms_dgt.config.components import check_args
    from fms_dgt.config.task_file import RUNTIME_TASK_ARGS
    from fms_dgt.index import default_builder_paths, import_builder, index_builders

    text = (Path(__file__).parents[2] / "docs/builders.md").read_text()
    start = text.index("### `conversation`: multi-turn")
    section = text[start : text.index("\n### ", start + 1)]
    blocks = [yaml.safe_load(b) for k, b in re.findall(r"```(\w*)\n(.*?)```", section, re.S) if k == "yaml"]
    tasks = [b for b in blocks if isinstance(b, dict) and "data_builder" in b]
    assert len(tasks) == 2
    task_cls = import_builder(index_builders(default_builder_paths())["conversation"]).TASK_TYPE
    identity = {"task_name", "task_description", "created_by", "data_builder"}
    for task in tasks:
        args = {k: v for k, v in task.items() if k not in identity | {"formatter", "runner_config"}}
        check_args(task_cls, args, doc=None, key=(), what="task", reserved=RUNTIME_TASK_ARGS | identity)
