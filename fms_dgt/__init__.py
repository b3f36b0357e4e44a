"""fms_dgt: synthetic data generation with LLMs.

Everything a builder author needs is importable from here::

    from fms_dgt import DataPoint, GenerationTask, PromptBuilder, LMRequest, register_data_builder

Importing this package stays light: the names below are loaded on first use (PEP 562), and
no vllm, torch or openai is imported until an engine that needs them is built, so
``python -m fms_dgt.run --help`` stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fms_dgt.registry import (
    register_block,
    register_data_builder,
    register_datastore,
    register_engine,
    register_formatter,
)

__all__ = [
    # records and tasks
    "DataPoint",
    "Task",
    "GenerationTask",
    "TransformationTask",
    # builders
    "DataBuilder",
    "GenerationDataBuilder",
    "TransformationDataBuilder",
    "PromptBuilder",
    "PromptTransformer",
    "Rejection",
    "record_type",
    # engines and requests
    "Engine",
    "LMRequest",
    "LMResult",
    "Constraint",
    "SamplingParams",
    # blocks, formatters, datastores
    "Block",
    "FilterBlock",
    "Postprocessor",
    "Formatter",
    "Datastore",
    "ConfigError",
    # builders from plain Python, without a task.yaml
    "load",
    "Processor",
    # registration
    "register_block",
    "register_data_builder",
    "register_datastore",
    "register_engine",
    "register_formatter",
]

# where each lazily loaded name is defined
_MODULES = {
    "fms_dgt.datapoint": ("DataPoint",),
    "fms_dgt.task": ("Task", "GenerationTask", "TransformationTask"),
    "fms_dgt.builders.base": ("DataBuilder", "GenerationDataBuilder", "TransformationDataBuilder"),
    "fms_dgt.builders.declarative": ("PromptBuilder", "PromptTransformer", "Rejection", "record_type"),
    "fms_dgt.engines.base": ("Engine",),
    "fms_dgt.engines.types": ("LMRequest", "LMResult", "Constraint", "SamplingParams"),
    "fms_dgt.blocks.base": ("Block", "FilterBlock", "Postprocessor"),
    "fms_dgt.formatters.base": ("Formatter",),
    "fms_dgt.datastores.base": ("Datastore",),
    "fms_dgt.errors": ("ConfigError",),
    "fms_dgt.standalone": ("load", "Processor"),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fms_dgt' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ loads them
    from fms_dgt.blocks.base import Block, FilterBlock, Postprocessor
    from fms_dgt.builders.base import DataBuilder, GenerationDataBuilder, TransformationDataBuilder
    from fms_dgt.builders.declarative import PromptBuilder, PromptTransformer, Rejection, record_type
    from fms_dgt.datapoint import DataPoint
    from fms_dgt.datastores.base import Datastore
    from fms_dgt.engines.base import Engine
    from fms_dgt.engines.types import Constraint, LMRequest, LMResult, SamplingParams
    from fms_dgt.errors import ConfigError
    from fms_dgt.formatters.base import Formatter
    from fms_dgt.standalone import Processor, load
    from fms_dgt.task import GenerationTask, Task, TransformationTask
