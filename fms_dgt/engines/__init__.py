"""LLM engines. Registered lazily so that importing fms_dgt never imports vllm, torch or
openai; a task that selects an engine imports only that one."""

from fms_dgt.engines.base import Engine, ResultSink, use_sink
from fms_dgt.engines.types import Constraint, EngineStats, LMRequest, LMResult, SamplingParams
from fms_dgt.registry import engines

engines.add("vllm", "fms_dgt.engines.vllm_engine:VLLMEngine")
engines.add("vllm-server", "fms_dgt.engines.vllm_server:VLLMServerEngine", "vllm_server")
engines.add("openai", "fms_dgt.engines.openai_engine:OpenAIEngine")

__all__ = [
    "Constraint",
    "Engine",
    "EngineStats",
    "LMRequest",
    "LMResult",
    "ResultSink",
    "SamplingParams",
    "use_sink",
]
