"""Seeded train/validation/test splits that stay put.

A split is drawn over record ids, not positions, so it does not depend on the order records
were accepted in. Two properties are wanted and a pure hash gives only one of them:

- *exact ratios*: each split holds its share of the records to within one row (largest
  remainder apportionment of the count);
- *stability*: the same records get the same splits when the run is resumed, and a record
  keeps its split when the run is extended with more records (a model evaluated on the
  test split of a first run must not have trained on it in a second).

``assign`` does both: every record's place in line is the hash of the seed and its id; a
first assignment hands out the quotas in that order (rank by hash); a later one keeps every
previous assignment that still fits its split's quota and hands out only the new records
(and those a shrunken quota pushed out, the latest in line first) to the splits short of
their quota. The finishing pass keeps the assignment in ``split_assignment.json`` in the
task folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SPLITS = ("train", "validation", "test")
ASSIGNMENT_FILE = "split_assignment.json"


def record_key(record: Mapping[str, Any]) -> str:
    """The id a record is split by: its ``id``, else a hash of its content."""
    rid = record.get("id")
    if rid is not None:
        return str(rid)
    blob = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    return "sha1:" + hashlib.sha1(blob.encode()).hexdigest()


def _rank(seed: int, key: str) -> bytes:
    return hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()


def quotas(n: int, ratios: Mapping[str, float]) -> dict[str, int]:
    """Rows per split for ``n`` records: floors of ``ratio * n``, the rows left over going
    to the largest fractional parts (ties in split order); each within one row of its share."""
    names = [s for s in SPLITS if ratios.get(s, 0) > 0]
    exact = {s: ratios[s] * n for s in names}
    out = {s: int(exact[s]) for s in names}
    left = n - sum(out.values())
    for s in sorted(names, key=lambda s: (-(exact[s] - out[s]), SPLITS.index(s)))[:left]:
        out[s] += 1
    return out


def assign(
    keys: Iterable[str],
    ratios: Mapping[str, float],
    seed: int,
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``{key: split}`` for every distinct key (see the module docstring)."""
    unique = list(dict.fromkeys(keys))
    target = quotas(len(unique), ratios)
    out: dict[str, str] = {}
    pool: list[str] = []
    held: dict[str, list[str]] = {s: [] for s in target}
    for key in unique:
        was = previous.get(key, "") if previous else ""
        held.get(was, pool).append(key)
    for split, members in held.items():
        members.sort(key=lambda k: _rank(seed, k))
        out.update(dict.fromkeys(members[: target[split]], split))
        pool.extend(members[target[split] :])
    pool.sort(key=lambda k: _rank(seed, k))
    taken = 0
    for split in target:
        need = target[split] - min(len(held[split]), target[split])
        out.update(dict.fromkeys(pool[taken : taken + need], split))
        taken += need
    return out


def load_assignment(task_dir: Path, ratios: Mapping[str, float], seed: int) -> dict[str, str] | None:
    """The assignment a previous finishing pass kept, if it was drawn with the same ratios
    and seed (another split configuration starts over)."""
    path = task_dir / ASSIGNMENT_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if doc.get("seed") != seed or doc.get("ratios") != dict(ratios):
        return None
    found = doc.get("assignment")
    return found if isinstance(found, dict) else None


def save_assignment(
    task_dir: Path, ratios: Mapping[str, float], seed: int, assignment: dict[str, str]
) -> None:
    from fms_dgt.datastores.base import write_json_atomic

    write_json_atomic(
        task_dir / ASSIGNMENT_FILE, {"seed": seed, "ratios": dict(ratios), "assignment": assignment}
    )


def assignment_current(task_dir: Path, ratios: Mapping[str, float] | None, seed: int = 0) -> bool:
    """Whether the split files on disk are for this split configuration (``ratios`` None:
    no split, so no assignment on disk)."""
    if ratios is None:
        return not (task_dir / ASSIGNMENT_FILE).exists()
    return load_assignment(task_dir, ratios, seed) is not None
