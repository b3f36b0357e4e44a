"""Task and record types of the ``simple`` builder: instruction/answer pairs."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from fms_dgt.datapoint import DataPoint
from fms_dgt.task import GenerationTask


@dataclass(kw_only=True)
class InstructData(DataPoint):
    """One instruction (``question``) and its ``answer``."""

    question: str
    answer: str


class SimpleTask(GenerationTask):
    """Generates InstructData from seed examples.

    ``random_seed`` (a task.yaml key) seeds the in-context example sampler, so the same
    seeds and the same random_seed give the same sequence of prompts.
    """

    INPUT_DATA_TYPE = InstructData
    OUTPUT_DATA_TYPE = InstructData

    def __init__(self, *args: Any, random_seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.random_seed = random_seed
        if random_seed is not None:
            self.rng = random.Random(random_seed)
