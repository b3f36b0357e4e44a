"""``--list``: what the runtime can see, without importing builders or heavy engines."""

from __future__ import annotations

from pathlib import Path

from fms_dgt.index import WITH_DATA, default_builder_paths, index_builders, index_tasks
from fms_dgt.registry import ALL


def print_listing(task_paths: list[str] | None, builder_paths: list[str]) -> None:
    if task_paths:
        tasks = index_tasks(task_paths)
        print(f"tasks ({len(tasks)}):")
        for name, entry in sorted(tasks.items()):
            print(f"  {name:40s} builder={entry.doc.data['data_builder']:12s} {entry.doc.path}")
    builders = index_builders([Path(p) for p in builder_paths] + default_builder_paths())
    aliases: dict[str, list[str]] = {}
    for key, b in builders.items():
        if key != b.name:
            shown = f"{key.removesuffix(WITH_DATA)} (with data:)" if key.endswith(WITH_DATA) else key
            aliases.setdefault(b.name, []).append(shown)
    print(f"data builders ({sum(k == b.name for k, b in builders.items())}):")
    for name, b in sorted((k, b) for k, b in builders.items() if k == b.name):
        also = f"  (also: {', '.join(sorted(aliases[name]))})" if name in aliases else ""
        print(f"  {name:40s} {b.doc.path}{also}")
    for kind in ("engines", "blocks", "datastores", "formatters"):
        reg = ALL[kind]
        names = list(reg)
        print(f"{kind} ({len(names)}):")
        for name in names:
            print(f"  {name:40s} {reg.describe(name)}")
    from fms_dgt.engines.profiles import PROFILES, detect

    machine = detect().profile
    print(f"hardware profiles ({len(PROFILES)}; --profile NAME, details: --list-profiles):")
    for name, p in PROFILES.items():
        mark = "  <- this machine" if name == machine else ""
        print(f"  {name:40s} {p.machine}: {p.generator.name or p.generator.label}{mark}")
