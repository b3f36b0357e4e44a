"""The authoring paths on the real default model: the docs' declarative builder (the code
block in docs/builders.md, run as written) and the task.yaml-only ``prompt`` builder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.catalogue.conftest import REPO, RunExample
from tests.core.helpers import read_jsonl

pytestmark = pytest.mark.vllm


def _docs_example() -> str:
    text = (REPO / "docs/builders.md").read_text()
    block = re.search(r"<!-- docs-example: qa_pairs -->\n```python\n(.*?)```", text, re.S)
    assert block, "the docs' example builder is missing"
    return block.group(1)


def test_the_docs_example_builder_is_short_and_runs(run_example: RunExample, tmp_path: Path) -> None:
    code = _docs_example()
    lines = [line for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(lines) <= 25, len(lines)
    folder = tmp_path / "builders" / "qa_pairs"
    folder.mkdir(parents=True)
    (folder / "generate.py").write_text(code)
    (folder / "qa_pairs.yaml").write_text(
        "name: qa_pairs\nblocks:\n  - {name: llm1, type: vllm, sampling: {max_tokens: 160, temperature: 0.7}}\n"
    )
    task = tmp_path / "task" / "task.yaml"
    task.parent.mkdir()
    task.write_text(
        yaml.safe_dump(
            {
                "task_name": "docs/qa_pairs",
                "task_description": "Questions about the weather with short answers.",
                "created_by": "tests",
                "data_builder": "qa_pairs",
                "seed_examples": [
                    {
                        "question": "Why is the sky blue on a clear day?",
                        "answer": "Air scatters blue light most.",
                    },
                    {
                        "question": "Why does fog form on cold mornings?",
                        "answer": "Cool air holds less water vapour.",
                    },
                ],
            }
        )
    )
    rt, outcome = run_example(task, target=3, builder_paths=(str(tmp_path / "builders"),))
    assert outcome.status == "complete", outcome.message
    final = read_jsonl(rt.output_dir / "docs/qa_pairs/final_data.jsonl")
    assert len(final) == 3
    for record in final:
        assert len(record["question"]) >= 10 and len(record["answer"]) >= 2  # the model's constraints held
        lineage = record["lineage"]
        assert lineage["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and lineage["engine"] == "llm1"
        assert lineage["prompt_template"] and lineage["tokens"]["completion"] > 0 and lineage["icl_ids"]


def test_the_task_yaml_only_prompt_builder_runs(run_example: RunExample) -> None:
    rt, outcome = run_example(REPO / "tasks/examples/prompt/task.yaml", target=3)
    assert outcome.status == "complete", outcome.message
    final = read_jsonl(rt.output_dir / "examples/prompt/science_quiz/final_data.jsonl")
    assert len(final) == 3
    for record in final:
        assert record["difficulty"] in ("easy", "hard")
        assert 15 <= len(record["question"]) <= 200
        samples = record["lineage"]["samples"]
        assert samples["topic"] in ("light", "sound", "heat", "magnets", "plants")
