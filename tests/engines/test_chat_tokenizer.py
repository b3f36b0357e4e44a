"""``Engine.chat_tokenizer()``: the model's tokenizer where an engine can give one without
the network (in-process vLLM: its loaded tokenizer; a vLLM server or an OpenAI-compatible
endpoint: the local model folder, read with transformers), None elsewhere; an engine view
forwards to the engine it shares."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fms_dgt.engines.openai_engine import OpenAIEngine
from fms_dgt.engines.types import SamplingParams
from fms_dgt.engines.view import EngineView
from tests.support.scripted_engine import ScriptedEngine

USER_PREFIX = "<|im_start|>user\n"


def _folder() -> str:
    from fms_dgt.engines.default_model import is_converted, model_dir

    if not is_converted():
        pytest.skip("the default model folder is not converted (python -m fms_dgt.engines.default_model)")
    return str(model_dir())


def _prefix(tokenizer: Any) -> str:
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Q"}], tokenize=False)
    return str(text).split("Q")[0]


def test_an_engine_without_a_tokenizer_says_none() -> None:
    engine = ScriptedEngine()
    assert asyncio.run(engine.chat_tokenizer()) is None
    view = EngineView(engine, "block", SamplingParams())
    assert asyncio.run(view.chat_tokenizer()) is None


def test_an_openai_engine_reads_a_local_model_folder() -> None:
    folder = _folder()
    assert (
        asyncio.run(
            OpenAIEngine(model="some-hosted-model", base_url="http://127.0.0.1:9/v1").chat_tokenizer()
        )
        is None
    )
    engine = OpenAIEngine(model=folder, base_url="http://127.0.0.1:9/v1")  # never started: no request
    tokenizer = asyncio.run(engine.chat_tokenizer())
    assert tokenizer is not None and _prefix(tokenizer).endswith(USER_PREFIX)
    view = EngineView(engine, "block", SamplingParams())
    assert asyncio.run(view.chat_tokenizer()) is tokenizer  # loaded once per folder


def test_a_vllm_server_engine_reads_the_folder_it_serves() -> None:
    from fms_dgt.engines.vllm_server import VLLMServerEngine

    _folder()
    engine = VLLMServerEngine()  # the default model; no server is started for this
    tokenizer = asyncio.run(engine.chat_tokenizer())
    assert tokenizer is not None and _prefix(tokenizer).endswith(USER_PREFIX)


@pytest.mark.vllm
def test_in_process_vllm_gives_its_loaded_tokenizer(vllm_engine: Any) -> None:
    loop = vllm_engine._private_loop()
    tokenizer = asyncio.run_coroutine_threadsafe(vllm_engine.chat_tokenizer(), loop).result(timeout=60)
    assert tokenizer is vllm_engine._runtime.tokenizer
    assert _prefix(tokenizer).endswith(USER_PREFIX)
