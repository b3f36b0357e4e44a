"""Task and record types of the ``genstruct`` builder: a user/assistant exchange grounded in
a document's title and content."""

from __future__ import annotations

from dataclasses import dataclass

from fms_dgt.datapoint import DataPoint
from fms_dgt.sources.grounded import DocumentsTask


@dataclass(kw_only=True)
class GenstructExample(DataPoint):
    """A seed: an exchange in the style wanted (``title``/``content`` optional)."""

    user: str
    assistant: str
    title: str = ""
    content: str = ""


@dataclass(kw_only=True)
class GenstructRecord(DataPoint):
    """A user message and the assistant's reply, grounded in ``content`` (a chunk of the
    document titled ``title``)."""

    title: str
    content: str
    user: str
    assistant: str


class GenstructTask(DocumentsTask):
    """User/assistant exchanges about the task's ``documents`` (see DocumentsTask)."""

    INPUT_DATA_TYPE = GenstructExample
    OUTPUT_DATA_TYPE = GenstructRecord
