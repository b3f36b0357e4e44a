"""``evol_instruct`` mechanics against a scripted model (tests/catalogue/scripted_model.py):
each kind of unusable step and its reason, a rejected step retried with another operator,
a failed request ending a chain, the ``topic`` sampler, keep_intermediate, answers, and the
operator and topic draws. The same builder runs on the real model in test_evol_instruct.py."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from tests.catalogue.scripted_model import as_json, run_scripted

EVOLVE = re.compile(r"Instruction: (.*)$")


def _task(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "task_name": name,
        "task_description": "Questions about everyday things.",
        "created_by": "tests",
        "data_builder": "evol_instruct",
        **extra,
    }


def test_each_unusable_step_is_rejected_with_its_reason(tmp_path: Path) -> None:
    outputs = {
        "Alpha": "{parent} Give two examples from a kitchen.",  # usable
        "Bravo": "{parent}",  # identical to its parent
        "Charlie": "Rewrite the instruction below, which a user gave an AI assistant.",  # echo
        "Delta": "Here is the new instruction for you to answer",  # talks about the task
        "Echo": "fly a kite fly a kite fly a kite today",  # loops
        "Foxtrot": "1234567890 ...",  # no words at all
    }

    def answer(prompt: str, structured: bool) -> str:
        parent = EVOLVE.search(prompt).group(1)  # type: ignore[union-attr]
        return as_json("instruction", outputs[parent.split()[0]].format(parent=parent))

    seeds = [{"instruction": f"{word} asks why kites fly so high."} for word in outputs]
    task = _task("evol/reasons", generations=1, step_attempts=1, seed_examples=seeds)
    run = run_scripted(
        task, tmp_path, answer, num_outputs_to_generate=1, seed_batch_size=6, max_concurrent_calls=1
    )
    assert run.outcome.status == "complete", run.outcome.message
    [record] = run.store("final_data")
    assert record["instruction"] == "Alpha asks why kites fly so high. Give two examples from a kitchen."
    reasons = {r["record"]["raw"]["parent"].split()[0]: r["reason"] for r in run.store("rejected")}
    assert reasons == {
        "Bravo": "identical to its parent",
        "Charlie": "the model echoed the prompt instead of writing an instruction",
        "Delta": "talks about the rewriting ('new instruction') instead of being an instruction",
        "Echo": "repeats itself",
        "Foxtrot": "empty instruction",
    }
    for rejection in run.store("rejected"):
        assert rejection["block"] == "evol_step"
        raw = rejection["record"]["raw"]
        assert raw["generation"] == 1 and raw["evolution"][0]["operator"] == "seed"
        assert raw["output"] and raw["operator"] in (
            "add_constraints",
            "deepen",
            "concretize",
            "increase_reasoning",
            "breadth",
        )


def test_a_rejected_step_is_retried_with_another_operator(tmp_path: Path) -> None:
    asked: Counter[str] = Counter()

    def answer(prompt: str, structured: bool) -> str:
        parent = EVOLVE.search(prompt).group(1)  # type: ignore[union-attr]
        asked[parent] += 1
        # the first try on each parent copies it; the second rewrites it
        return as_json(
            "instruction", parent if asked[parent] == 1 else f"{parent} Use a {len(parent)}-word answer."
        )

    seeds = [{"instruction": "Why do kites need wind to fly?"}]
    task = _task("evol/retry", generations=2, operators={"deepen": 1, "concretize": 1}, seed_examples=seeds)
    run = run_scripted(task, tmp_path, answer, num_outputs_to_generate=1, max_concurrent_calls=1)
    assert run.outcome.status == "complete", run.outcome.message
    [record] = run.store("final_data")
    evolution = record["evolution"]
    assert [s["generation"] for s in evolution] == [0, 1, 2]
    rejected = [r["record"]["raw"] for r in run.store("rejected")]
    assert [r["generation"] for r in rejected] == [1, 2]
    for raw, step in zip(rejected, evolution[1:]):
        assert raw["parent"] == evolution[step["generation"] - 1]["instruction"]
        assert {raw["operator"], step["operator"]} == {"deepen", "concretize"}  # the retry used the other one
    assert record["lineage"]["operators"] == [evolution[1]["operator"], evolution[2]["operator"]]
    assert record["lineage"]["tokens"]["prompt"] == 4 * 5  # four requests (the scripted server counts 5 each)


def test_topic_sampler_keep_intermediate_answers_and_a_failed_request(tmp_path: Path) -> None:
    def answer(prompt: str, structured: bool) -> str:
        if not structured:
            return f"An answer to: {prompt}"
        found = EVOLVE.search(prompt)
        if found is None:  # the first instruction, for the topic in the prompt
            topic = re.search(r"about this topic: (.*)", prompt).group(1)  # type: ignore[union-attr]
            return as_json("instruction", f"How do I start learning about {topic} at home?")
        parent = found.group(1)
        if "clocks" in parent and parent.count("Explain") == 1:
            return "not JSON"  # the second generation of the clock chain fails
        return as_json("instruction", f"{parent} Explain step {parent.count('Explain') + 1} of it.")

    task = _task(
        "evol/topics",
        generations=2,
        keep_intermediate=True,
        respond=True,
        samplers={"topic": {"type": "category", "values": ["kites", "clocks"]}},
    )
    run = run_scripted(task, tmp_path, answer, num_outputs_to_generate=3, max_concurrent_calls=2, seed=1)
    assert run.outcome.status == "complete", run.outcome.message
    records = run.store("data")
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_topic.setdefault(record["topic"], []).append(record)
        assert record["evolution"][0]["operator"] == "from_topic"
        assert record["instruction"] == record["evolution"][-1]["instruction"]
        assert record["response"] == f"An answer to: {record['instruction']}"
        assert record["lineage"]["response"]["engine"] == "responder"
    kites = Counter(len(r["evolution"]) for r in by_topic["kites"])
    assert kites[2] == kites[3] >= 1  # each chain: a record for generation 1 and one for generation 2
    assert by_topic["clocks"] and all(len(r["evolution"]) == 2 for r in by_topic["clocks"])  # step 2 failed
    failed = run.store("failed")
    assert failed and all(f["request"]["metadata"]["generation"] == 2 for f in failed)
    assert all("clocks" in f["request"]["messages"][-1]["content"] for f in failed)


def test_operator_weights_and_topics_in_turn(tmp_path: Path) -> None:
    task = _task(
        "evol/draws",
        topics=["kites", "clocks", "bread"],
        operators={"deepen": 3, "breadth": 1, "concretize": 0},
    )

    def answer(prompt: str, structured: bool) -> str:
        found = EVOLVE.search(prompt)
        parent = found.group(1) if found else "What keeps a kite up in the air?"
        return as_json("instruction", f"{parent} Say why." if found else parent)

    run = run_scripted(task, tmp_path, answer, num_outputs_to_generate=1)
    evol_task: Any = run.runtime.prepared[0].task
    assert [evol_task.topic_for(i) for i in range(6)] == ["kites", "clocks", "bread"] * 2
    rng = random.Random(0)
    draws = Counter(evol_task.pick_operator(rng, []) for _ in range(4000))
    assert set(draws) == {"deepen", "breadth"} and 2.5 < draws["deepen"] / draws["breadth"] < 3.5
    assert {evol_task.pick_operator(rng, ["deepen"]) for _ in range(50)} == {"breadth"}  # another one first
    assert run.outcome.status == "complete" and evol_task.seed_examples == []  # no seeds needed with topics


def test_the_docs_minimal_tasks_validate(tmp_path: Path) -> None:
    """The task.yaml examples of the self_instruct and evol_instruct sections of
    docs/builders.md load and check as written."""
    from fms_dgt.run import main
    from tests.catalogue.conftest import REPO

    text = (REPO / "docs/builders.md").read_text()
    mine = re.compile(r"^data_builder: (self_instruct|evol_instruct)$", re.M)
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if mine.search(b)]
    assert len(blocks) == 3
    for i, block in enumerate(blocks):
        folder = tmp_path / f"docs{i}"
        folder.mkdir()
        (folder / "task.yaml").write_text(block)
        assert main(["--validate", "--no-progress", "--task-paths", str(folder)]) == 0, block
