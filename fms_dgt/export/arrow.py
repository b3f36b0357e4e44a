"""Records to Arrow tables that keep their structure: nested fields (chat messages, lineage,
documents) become Arrow lists and structs, so a parquet reader sees data, not JSON text.

Dicts with different keys in one column become one struct holding every key (the missing
ones null), which is what Hugging Face ``datasets`` and every Arrow reader expect. A column
whose values no Arrow type holds (a number in one row, a string in another) is written as
JSON strings, and the table's schema metadata lists it (``fms_dgt.json_columns``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

JSON_COLUMNS_KEY = b"fms_dgt.json_columns"


def records_table(records: Sequence[dict[str, Any]]) -> Any:
    """A ``pyarrow.Table`` of ``records``: columns in first-seen order, every key of every
    record (a record without a key has null there)."""
    import pyarrow as pa

    order: dict[str, None] = {}
    for shape in dict.fromkeys(map(tuple, records)):  # the distinct key sequences, in order
        order.update(dict.fromkeys(shape))
    arrays = {}
    json_cols = []
    for key in order:
        values = [r.get(key) for r in records]
        try:
            arrays[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            json_cols.append(key)
            arrays[key] = pa.array(
                [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values],
                pa.string(),
            )
    table = pa.table(arrays) if arrays else pa.table({})
    if json_cols:
        table = table.replace_schema_metadata({JSON_COLUMNS_KEY: json.dumps(json_cols).encode()})
    return table
