"""The parquet datastore writes nested fields (messages, lineage) as native Arrow structs
and lists, falls back to JSON strings only where Arrow cannot hold a column exactly, and
still reads parts written when every nested field was a JSON string."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import fms_dgt.datastores  # noqa: F401
from fms_dgt.registry import datastores

RECORDS = [
    {
        "id": "a",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "lineage": {"builder": "simple", "icl_ids": ["s1", "s2"], "tokens": 12},
        "extra": {"k": 1},
    },
    {
        "id": "b",
        "messages": [{"role": "user", "content": "why?"}],
        "lineage": {"builder": "simple", "icl_ids": [], "tokens": 7},
        "extra": {"other": "shape"},
    },
]


def _store(tmp_path: Path, name: str = "final_data"):
    return datastores.get("default")(
        store_name=name, output_dir=tmp_path, task_name="t", output_data_format="parquet"
    )


def test_nested_fields_are_arrow_structs_and_lists(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.replace(iter(RECORDS))
    assert list(store.load_data()) == RECORDS
    table = pq.read_table(tmp_path / "t" / "final_data.parquet")
    assert pa.types.is_list(table.schema.field("messages").type)
    assert pa.types.is_struct(table.schema.field("messages").type.value_type)
    assert pa.types.is_struct(table.schema.field("lineage").type)
    # dicts with different keys cannot be one struct without inventing keys: JSON for that part
    assert table.schema.field("extra").type == pa.string()
    # appended records (the write-ahead log compacted into parts) too
    data = _store(tmp_path, "data")
    data.save_data(RECORDS[:1])
    data.save_data(RECORDS[1:])
    data.sync()
    data.close()
    assert list(_store(tmp_path, "data").load_data()) == RECORDS


def test_parts_written_with_json_strings_still_read(tmp_path: Path) -> None:
    folder = tmp_path / "t" / "final_data.parquet"
    folder.mkdir(parents=True)
    old = pa.table(
        {
            "id": ["a", "b"],
            "messages": [json.dumps(r["messages"]) for r in RECORDS],
            "lineage": [json.dumps(r["lineage"]) for r in RECORDS],
            "extra": [json.dumps(r["extra"]) for r in RECORDS],
        }
    ).replace_schema_metadata({b"fms_dgt.json_columns": b'["messages", "lineage", "extra"]'})
    pq.write_table(old, folder / "part-00000.parquet")
    assert list(_store(tmp_path).load_data()) == RECORDS
