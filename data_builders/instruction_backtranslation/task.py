"""Task and record types of the ``instruction_backtranslation`` builder: how well each
generation answers its instruction as an AI assistant would (the self-curation rating of
instruction backtranslation, Humpback), 1 to 5, with a reason."""

from __future__ import annotations

from dataclasses import dataclass

from fms_dgt import DataPoint, TransformationTask

MIN_SCORE, MAX_SCORE = 1, 5


@dataclass(kw_only=True)
class InstructionAnswer(DataPoint):
    """An input row: an instruction and a generation (the answer to rate)."""

    instruction: str
    generation: str

    def __post_init__(self) -> None:
        for name in ("instruction", "generation"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a text, got {type(getattr(self, name)).__name__}")
        super().__post_init__()


@dataclass(kw_only=True)
class RatedAnswer(DataPoint):
    """The row with its rating: ``score`` 1..5 and the judge's ``reason``."""

    instruction: str
    generation: str
    score: int
    reason: str
    model_name: str | None = None


class InstructionBacktranslationTask(TransformationTask):
    """No task.yaml keys of its own: the rows bring ``instruction`` and ``generation``
    (map other columns with ``data: {columns: {generation: <column>}}``)."""

    INPUT_DATA_TYPE = InstructionAnswer
    OUTPUT_DATA_TYPE = RatedAnswer
