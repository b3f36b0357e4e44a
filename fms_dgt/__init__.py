"""fms_dgt: synthetic data generation with LLMs. Importing this package stays light: no
vllm, torch or openai is imported until an engine that needs them is built."""

from fms_dgt.registry import (
    register_block,
    register_data_builder,
    register_datastore,
    register_engine,
    register_formatter,
)

__all__ = [
    "register_block",
    "register_data_builder",
    "register_datastore",
    "register_engine",
    "register_formatter",
]
