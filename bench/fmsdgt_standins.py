"""A copy of fms-dgt's ``data/`` folder with stand-ins for the files its task files name
that a checkout lacks.

Usage::

    python -m bench.fmsdgt_standins --data /tmp/fmsdgt/data --out /tmp/fmsdgt-data

A clone made without large blobs (the snapshot measured here) has no
``public/tool_calling/personas.jsonl`` and three of the seven ``toolmind`` tool files, so
their four tool-calling task files stop at the missing file before anything else is
checked. This copies ``--data`` to ``--out`` and writes, only where a file is missing, a
small one of our own in the same format (three personas; two tools per tool file), so that
``bench.fmsdgt_tasks --data <out>`` measures whether the task files themselves load and
run. What the stand-ins hold is invented here; it is not their data, and a measurement on
it says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

PERSONAS = [
    {"role": "online shopper", "expertise": "beginner", "domain": "retail", "goals": ["track an order"]},
    {
        "role": "small business owner",
        "expertise": "intermediate",
        "domain": "e-commerce",
        "goals": ["returns"],
    },
    {"role": "commuting student", "expertise": "beginner", "domain": "travel", "goals": ["cheap trains"]},
]


def _tools(prefix: str) -> dict[str, dict[str, object]]:
    """Two tools in their ``name -> tool`` shape, named after the file they stand in for."""
    string = {"type": "string"}
    return {
        f"{prefix}_lookup": {
            "name": f"{prefix}_lookup",
            "description": "Look up a record by its id.",
            "parameters": {"type": "object", "properties": {"record_id": string}, "required": ["record_id"]},
            "output_parameters": {
                "type": "object",
                "properties": {"found": {"type": "boolean"}, "summary": string},
                "required": ["found"],
            },
        },
        f"{prefix}_schedule": {
            "name": f"{prefix}_schedule",
            "description": "Schedule an appointment on a day.",
            "parameters": {
                "type": "object",
                "properties": {"day": {"type": "string", "description": "YYYY-MM-DD"}, "topic": string},
                "required": ["day", "topic"],
            },
        },
    }


STANDINS = {
    "public/tool_calling/personas.jsonl": lambda: "".join(json.dumps(p) + "\n" for p in PERSONAS),
    "public/tool_calling/toolmind/BUTTONInstruct-query_tools.yaml": lambda: yaml.safe_dump(_tools("button")),
    "public/tool_calling/toolmind/ToolACE-query_tools.yaml": lambda: yaml.safe_dump(_tools("toolace")),
    "public/tool_calling/toolmind/graphsyn_tools.yaml": lambda: yaml.safe_dump(_tools("graphsyn")),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="fms-dgt's data/ folder")
    p.add_argument("--out", type=Path, required=True, help="where the copy goes (must not exist)")
    a = p.parse_args()
    shutil.copytree(a.data, a.out)
    for rel, make in STANDINS.items():
        path = a.out / rel
        if path.exists():
            print(f"present   {rel}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        print(f"stand-in  {rel}")


if __name__ == "__main__":
    main()
