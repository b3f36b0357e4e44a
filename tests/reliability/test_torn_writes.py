"""What a crash can leave in a datastore, and how the next run reads it.

SIGKILL between two appends leaves whole lines; a power loss (or a full disk) can leave a
torn last line, or a parquet store between "part written" and "log emptied". Each state is
built by hand here and reopened the way a resumed run reopens it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from fms_dgt.datastores.files import FileDatastore
from fms_dgt.datastores.parquet import ParquetStore, _write_part


def _store(tmp_path: Path, fmt: str, name: str = "data") -> FileDatastore:
    return FileDatastore(store_name=name, output_dir=tmp_path, task_name="t", output_data_format=fmt)


def _records(start: int, n: int) -> list[dict[str, object]]:
    return [{"id": f"r{i}", "n": i, "nested": {"k": [i]}} for i in range(start, start + n)]


def test_jsonl_torn_last_line_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path, "jsonl")
    store.save_data(_records(0, 3))
    store.close()
    with open(store.path, "ab") as fh:
        fh.write(b'{"id": "r3", "n": 3, "nes')
    caplog.set_level(logging.WARNING)
    reopened = _store(tmp_path, "jsonl")
    assert [r["id"] for r in reopened.load_data()] == ["r0", "r1", "r2"]
    assert "torn last record" in caplog.text
    reopened.save_data(_records(3, 2))  # the append cuts the torn tail first
    reopened.close()
    assert [r["id"] for r in _store(tmp_path, "jsonl").load_data()] == ["r0", "r1", "r2", "r3", "r4"]
    assert store.path.read_bytes().endswith(b"\n")


def test_jsonl_complete_last_record_without_newline_is_kept(tmp_path: Path) -> None:
    """Readers and the append repair must agree on what was written: a record that is whole
    but lost its newline is counted by the reader, so the repair must not cut it."""
    store = _store(tmp_path, "jsonl")
    store.save_data(_records(0, 2))
    store.close()
    store.path.write_bytes(store.path.read_bytes()[:-1])
    reopened = _store(tmp_path, "jsonl")
    assert [r["id"] for r in reopened.load_data()] == ["r0", "r1"]
    reopened.save_data(_records(2, 1))
    reopened.close()
    assert [r["id"] for r in _store(tmp_path, "jsonl").load_data()] == ["r0", "r1", "r2"]


def test_jsonl_corrupt_middle_line_is_an_error_not_silently_skipped(tmp_path: Path) -> None:
    from fms_dgt.errors import DatastoreError

    store = _store(tmp_path, "jsonl")
    store.save_data(_records(0, 1))
    store.close()
    with open(store.path, "ab") as fh:
        fh.write(b"garbage\n" + b'{"id": "r9"}\n')
    with pytest.raises(DatastoreError, match=r"data\.jsonl:2"):
        list(_store(tmp_path, "jsonl").load_data())


def test_parquet_round_trip_through_log_and_parts(tmp_path: Path) -> None:
    store = _store(tmp_path, "parquet")
    store.save_data(_records(0, 3))
    store.sync()  # compacts the log into a part
    store.save_data(_records(3, 2))  # still in the log
    assert [r["n"] for r in store.load_data()] == [0, 1, 2, 3, 4]
    assert list(store.load_data())[4]["nested"] == {"k": [4]}
    store.close()
    assert [r["n"] for r in _store(tmp_path, "parquet").load_data()] == [0, 1, 2, 3, 4]


def test_parquet_crash_between_part_and_log_removal_loses_nothing(tmp_path: Path) -> None:
    """The log names the part it becomes; a crash after the part was written but before the
    log was removed must neither duplicate those records nor swallow later appends."""
    store = _store(tmp_path, "parquet")
    store.save_data(_records(0, 3))
    store._parquet._wal.close()
    # what compact() does, stopped just before it unlinks the log (a crash at that point)
    generation, records = store._parquet._wal_generation()
    _write_part(store.path / f"part-{generation:05d}.parquet", records)
    reopened = _store(tmp_path, "parquet")
    assert [r["n"] for r in reopened.load_data()] == [0, 1, 2]
    reopened.save_data(_records(3, 2))
    assert [r["n"] for r in reopened.load_data()] == [0, 1, 2, 3, 4]
    reopened.close()
    assert [r["n"] for r in _store(tmp_path, "parquet").load_data()] == [0, 1, 2, 3, 4]


def test_parquet_torn_log_tail_is_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(tmp_path, "parquet")
    store.save_data(_records(0, 2))
    store._parquet._wal.close()
    with open(store.path / "wal.jsonl", "ab") as fh:
        fh.write(b'{"id": "r2", "n"')
    caplog.set_level(logging.WARNING)
    reopened = _store(tmp_path, "parquet")
    assert [r["n"] for r in reopened.load_data()] == [0, 1]
    reopened.save_data(_records(2, 1))
    reopened.close()
    assert [r["n"] for r in _store(tmp_path, "parquet").load_data()] == [0, 1, 2]
    assert "torn" in caplog.text


def test_parquet_torn_log_header_loses_no_later_records(tmp_path: Path) -> None:
    """A crash while the log's header line was being written leaves a log with no header;
    records appended after that must still reach a part."""
    store = _store(tmp_path, "parquet")
    store.save_data(_records(0, 2))
    store.close()
    store.path.mkdir(exist_ok=True)
    (store.path / "wal.jsonl").write_bytes(b'{"__wal_pa')
    reopened = _store(tmp_path, "parquet")
    reopened.save_data(_records(2, 2))
    reopened.close()
    assert [r["n"] for r in _store(tmp_path, "parquet").load_data()] == [0, 1, 2, 3]


def test_parquet_interrupted_replace_keeps_the_old_content(tmp_path: Path) -> None:
    store = _store(tmp_path, "parquet", "final_data")
    store.replace(_records(0, 3))
    # replace() moved the current copy aside and died before moving the new one in
    os.replace(store.path, store.path.with_name(f".{store.path.name}.old"))
    assert [r["n"] for r in _store(tmp_path, "parquet", "final_data").load_data()] == [0, 1, 2]
    fresh = _store(tmp_path, "parquet", "final_data")
    fresh.replace(_records(5, 2))
    assert [r["n"] for r in fresh.load_data()] == [5, 6]
    assert not store.path.with_name(f".{store.path.name}.old").exists()


def test_parquet_store_alone(tmp_path: Path) -> None:
    """ParquetStore without the FileDatastore wrapper: compact is idempotent."""
    ps = ParquetStore(tmp_path / "x.parquet")
    ps.append(_records(0, 2))
    ps.compact()
    ps.compact()
    assert [r["n"] for r in ps.iter_records()] == [0, 1]
