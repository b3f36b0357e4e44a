"""One task's records as the pages ask for them: a page of a store with a search and
filters, one record with the in-context examples it came from, the seed examples.

Filters of the run's own stores (``rejected`` by block and reason, ``failed`` by stage and
error) need each line's labels; they are read once, as the store grows, into small arrays
of label numbers, so a filtered page is a numpy selection and a slice. Search results are
kept per (store, query, size) so paging through them scans the store once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fms_dgt.datapoint import BASE_FIELDS, content_id
from fms_dgt.datastores.files import _dumps
from fms_dgt.ledger import reason_kind
from fms_dgt.view.runs import read_task_json, store_path
from fms_dgt.view.store_index import TICK, IndexCache, JsonlIndex, StoreIndex, _parse

FILTERED = {"rejected": ("block", "reason"), "failed": ("stage", "error")}
PAGE_SIZES = (5, 10, 25, 50, 100)


@dataclass
class Page:
    rows: list[tuple[int, Any]]
    total: int  # records matching
    page: int  # 1-based
    pages: int
    size: int
    complete: bool = True  # False: a search stopped early, ``total`` is a lower bound


class Search:
    """A search of one store, run as far as pages need it: at least up to the records a
    page shows, then on for a short time budget, so a small store is always searched whole
    and a million-record one answers its first pages before the scan ends."""

    BUDGET = 0.05  # seconds of scanning beyond what the page needs

    def __init__(self, index: StoreIndex, query: str, size: int) -> None:
        self.size = size
        self.found: list[int] = []
        self.done = False
        self._scan = index.search(query)

    def pull(self, want: int) -> None:
        """Scan until ``want`` records are found, then on until the budget (counted from
        this call) is spent, stopping only between chunks of the store."""
        deadline = time.perf_counter() + self.BUDGET
        while not self.done:
            pos = next(self._scan, None)
            if pos is None:
                self.done = True
            elif pos == TICK:
                if len(self.found) >= want and time.perf_counter() > deadline:
                    return
            elif pos < self.size:
                self.found.append(pos)

    def positions(self) -> np.ndarray:
        return np.asarray(self.found, dtype=np.int64)


def labels_of(store: str, record: Any) -> tuple[str, str]:
    """The two filter labels of a ``rejected`` / ``failed`` line."""
    if not isinstance(record, dict):
        return ("?", "?")
    if store == "rejected":
        return (str(record.get("block")), reason_kind(str(record.get("reason", ""))))
    return (str(record.get("stage")), reason_kind(str(record.get("error") or "unknown")))


# the key that follows the (large) wrapped record or request in a line the ledger wrote
_TAIL_KEY = {"rejected": b',"block":', "failed": b',"error":'}


def _line_labels(store: str, raw: bytes) -> tuple[str, str]:
    """Labels of a raw line, parsing only its tail where it can: the ledger writes the
    record first, so the last top-level key before the labels starts the part that holds
    them (a quote inside a JSON string is escaped, so the key cannot occur in one)."""
    cut = raw.rfind(_TAIL_KEY[store])
    if cut > 0:
        tail = _parse(b"{" + raw[cut + 1 :])
        if isinstance(tail, dict) and (store != "rejected" or "reason" in tail):
            return labels_of(store, tail)
    return labels_of(store, _parse(raw))


class Labels:
    """Per-line filter labels of one log store, extended as the store grows."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self.names: list[dict[str, int]] = [{}, {}]
        self.codes = [np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)]

    def update(self, index: StoreIndex) -> None:
        with self.lock:
            done, n = len(self.codes[0]), len(index)
            if n < done:  # the store was replaced
                self._clear()
                done = 0
            key = _TAIL_KEY[self.store]
            memo: dict[bytes, tuple[int, int]] = {}  # a line's tail -> its label codes
            for start in range(done, n, 20_000):
                new: list[tuple[int, int]] = []
                for raw in _raw_lines(index, start, min(20_000, n - start)):
                    cut = raw.rfind(key)
                    tail = raw[cut:] if cut > 0 else None
                    codes = memo.get(tail) if tail is not None else None
                    if codes is None:
                        a, b = _line_labels(self.store, raw)
                        codes = (
                            self.names[0].setdefault(a, len(self.names[0])),
                            self.names[1].setdefault(b, len(self.names[1])),
                        )
                        if tail is not None and len(memo) < 100_000:
                            memo[tail] = codes
                    new.append(codes)
                pairs = np.asarray(new, dtype=np.int32).reshape(-1, 2)
                for k in (0, 1):
                    self.codes[k] = np.concatenate([self.codes[k], pairs[:, k]])

    def select(self, first: str | None, second: str | None) -> np.ndarray | None:
        """Positions whose labels are ``first`` / ``second`` (None: any); None if no filter."""
        if not first and not second:
            return None
        mask = np.ones(len(self.codes[0]), dtype=bool)
        for k, want in enumerate((first, second)):
            if want:
                code = self.names[k].get(want)
                mask &= self.codes[k] == (-1 if code is None else code)
        return np.flatnonzero(mask)

    def facets(self) -> dict[str, Counter[str]]:
        """``{first label: Counter(second label)}`` over the whole store."""
        inverse = [{v: k for k, v in names.items()} for names in self.names]
        out: dict[str, Counter[str]] = {}
        pairs = Counter(zip(self.codes[0].tolist(), self.codes[1].tolist(), strict=True))
        for (a, b), n in pairs.items():
            out.setdefault(inverse[0][a], Counter())[inverse[1][b]] += n
        return out


def _raw_lines(index: StoreIndex, start: int, count: int) -> list[bytes]:
    if isinstance(index, JsonlIndex):
        return index.read_raw(start, count)
    return [_dumps(r) for _, r in index.read(start, count)]


class TaskRecords:
    """Queries over one task folder's stores (all paths checked to stay inside ``root``)."""

    def __init__(self, root: Path, task_dir: Path, cache: IndexCache, memo: dict[Any, Any]) -> None:
        self.root, self.task_dir, self.cache, self.memo = root, task_dir, cache, memo

    def index(self, store: str) -> StoreIndex | None:
        path = store_path(self.root, self.task_dir, store)
        return None if path is None else self.cache.get(path)

    def labels(self, store: str) -> Labels | None:
        index = self.index(store)
        if store not in FILTERED or index is None:
            return None
        key = ("labels", self.task_dir, store)
        labels = self.memo.setdefault(key, Labels(store))
        labels.update(index)
        return labels

    def page(
        self,
        store: str,
        page: int = 1,
        size: int = 25,
        query: str = "",
        first: str | None = None,
        second: str | None = None,
    ) -> Page:
        index = self.index(store)
        if index is None:
            return Page([], 0, 1, 1, size)
        n = len(index)
        selection: np.ndarray | None = None
        labels = self.labels(store)
        if labels is not None:
            selection = labels.select(first, second)
        complete = not getattr(index, "building", False)  # a first index still being built
        if query:
            search = self._search(store, index, query, n, max(1, page) * size + 1 if selection is None else n)
            found, complete = search.positions(), complete and search.done
            selection = found if selection is None else np.intersect1d(selection, found)
        total = n if selection is None else len(selection)
        pages = max(1, -(-total // size))
        page = min(max(1, page), pages)
        start = (page - 1) * size
        if selection is None:
            rows = index.read(start, size)
        else:
            rows = [row for pos in selection[start : start + size] for row in index.read(int(pos), 1)]
        return Page(rows, total, page, pages, size, complete)

    def _search(self, store: str, index: StoreIndex, query: str, n: int, want: int) -> Search:
        key = ("search", self.task_dir, store, query)
        search = self.memo.get(key)
        if search is None or search.size != n:
            if len(self.memo) > 200:
                self.memo.pop(next(k for k in self.memo if k[0] == "search"), None)
            search = self.memo[key] = Search(index, query, n)
        search.pull(want)
        return search

    def record(self, store: str, pos: int) -> Any | None:
        index = self.index(store)
        if index is None or not 0 <= pos < len(index):
            return None
        rows = index.read(pos, 1)
        return rows[0][1] if rows else None

    def seeds(self) -> list[dict[str, Any]]:
        """The task's seed examples (from its card), each with the id a run gives it."""
        card = read_task_json(self.root, self.task_dir, "task_card.json")
        config = card.get("task_config") or {}
        name = str(card.get("task_name") or config.get("task_name") or "")
        out = []
        for seed in config.get("seed_examples") or []:
            if isinstance(seed, dict):
                fields = {k: v for k, v in seed.items() if k not in BASE_FIELDS}
                out.append({"id": seed.get("id") or content_id(name, fields), **fields})
        return out

    def card(self) -> dict[str, Any]:
        return read_task_json(self.root, self.task_dir, "task_card.json")

    def resolve(self, ids: list[str]) -> list[dict[str, Any]]:
        """Each in-context example id with where it was found (seed or a store position)
        and the record, or ``found: False``."""
        seeds = {s["id"]: s for s in self.seeds()}
        out = []
        for rid in ids[:20]:
            if rid in seeds:
                out.append({"id": rid, "found": True, "store": "seed", "pos": None, "record": seeds[rid]})
                continue
            hit = None
            for store in ("data", "final_data"):
                index = self.index(store)
                pos = index.find_id(str(rid)) if index is not None else None
                if pos is not None:
                    hit = {
                        "id": rid,
                        "found": True,
                        "store": store,
                        "pos": pos,
                        "record": self.record(store, pos),
                    }
                    break
            out.append(hit or {"id": rid, "found": False, "store": None, "pos": None, "record": None})
        return out


def user_fields(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        return {"value": record}
    return {k: v for k, v in record.items() if k not in BASE_FIELDS}


def chat_of(record: Any) -> list[dict[str, str]] | None:
    """The conversation in a record (a ``messages`` list of role/content), if any."""
    if not isinstance(record, dict):
        return None
    messages = record.get("messages")
    if (
        isinstance(messages, list)
        and messages
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)
    ):
        return [{"role": str(m["role"]), "content": _text(m["content"])} for m in messages]
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts
        return "\n".join(str(p.get("text", p)) if isinstance(p, dict) else str(p) for p in value)
    return str(value)


def inner_record(store: str, row: Any) -> Any:
    """The generated record a line is about: a rejected line wraps it in ``record``."""
    if store == "rejected" and isinstance(row, dict) and isinstance(row.get("record"), dict):
        return row["record"]
    return row
