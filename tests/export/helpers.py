"""Export test helpers: loading an export folder with a real ``datasets`` install, offline."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest


def load(cache_root: Path, *args: Any, **kwargs: Any) -> Any:
    """``datasets.load_dataset`` offline, with a fresh cache folder under ``cache_root`` (so
    nothing read earlier is served from a cache)."""
    datasets = pytest.importorskip("datasets")
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    datasets.disable_progress_bars()
    return datasets.load_dataset(*args, cache_dir=str(cache_root / uuid.uuid4().hex), **kwargs)


def rows(ds: Any) -> dict[str, list[dict[str, Any]]]:
    return {split: ds[split].to_list() for split in ds}
