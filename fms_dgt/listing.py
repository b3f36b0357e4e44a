"""``--list``: what the runtime can see, without importing builders or heavy engines."""

from __future__ import annotations

from pathlib import Path

from fms_dgt.index import default_builder_paths, index_builders, index_tasks
from fms_dgt.registry import ALL


def print_listing(task_paths: list[str] | None, builder_paths: list[str]) -> None:
    if task_paths:
        tasks = index_tasks(task_paths)
        print(f"tasks ({len(tasks)}):")
        for name, entry in sorted(tasks.items()):
            print(f"  {name:40s} builder={entry.doc.data['data_builder']:12s} {entry.doc.path}")
    builders = index_builders([Path(p) for p in builder_paths] + default_builder_paths())
    print(f"data builders ({len(builders)}):")
    aliases: dict[str, list[str]] = {}
    for key, b in builders.items():
        if key != b.name:
            aliases.setdefault(b.name, []).append(key)
    for name, b in sorted((k, b) for k, b in builders.items() if k == b.name):
        also = f"  (also: {', '.join(sorted(aliases[name]))})" if name in aliases else ""
        print(f"  {name:40s} {b.doc.path}{also}")
    for kind in ("engines", "blocks", "datastores", "formatters"):
        reg = ALL[kind]
        names = list(reg)
        print(f"{kind} ({len(names)}):")
        for name in names:
            print(f"  {name:40s} {reg.describe(name)}")
