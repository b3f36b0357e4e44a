"""How many of IBM fms-dgt's task files load and run here unchanged.

Usage::

    python -m bench.fmsdgt_tasks --tasks /path/to/fms-dgt/tasks --data /path/to/fms-dgt/data \\
        [--target 3] [--run] [--markdown FILE]

Every ``*.yaml`` task file under ``--tasks`` is validated on its own (``--validate``, with
``DGT_DATA_DIR`` set to ``--data``): it loads, or the first line of what is unsupported is
reported. With ``--run``, the files that load are run together on the embedded default model
to ``--target`` records each (a transformation: its first ``--target`` rows), in a
temporary output folder, and each task's final status is reported. Nothing is changed in
the tree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _cli(args: list[str], data: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DGT_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "fms_dgt.run", "--no-progress", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def validate(files: list[Path], data: Path) -> dict[Path, tuple[bool, str]]:
    out: dict[Path, tuple[bool, str]] = {}
    for f in files:
        r = _cli(["--validate", "--task-paths", str(f), "--output-dir", tempfile.mkdtemp()], data, 600)
        if r.returncode == 0:
            name = next((ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("ok  ")), "?")
            out[f] = (True, name)
        else:
            lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
            detail = next((ln for ln in lines if ln.startswith(str(f))), lines[-1] if lines else "?")
            out[f] = (False, detail.replace(str(f) + ":", "line "))
    return out


def run(files: list[Path], data: Path, target: int, timeout: float) -> dict[str, str]:
    out_dir = Path(tempfile.mkdtemp(prefix="fmsdgt-run-"))
    args = ["--task-paths", *map(str, files), "--output-dir", str(out_dir)]
    args += ["--num-outputs-to-generate", str(target)]
    override = out_dir / "rows.yaml"
    override.write_text(f"runner_config:\n  max_input_rows: {target}\n")
    r = _cli([*args, "--config-path", str(override)], data, timeout)
    statuses: dict[str, str] = {}
    for results in out_dir.rglob("task_results.json"):
        doc = json.loads(results.read_text())
        final = doc.get("counts", {}).get("final")
        statuses[doc["task_name"]] = f"{doc['status']} ({final} records)"
    if r.returncode not in (0, 1):
        statuses["(run)"] = f"exit {r.returncode}: {r.stderr[-300:]}"
    return statuses


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--target", type=int, default=3)
    p.add_argument("--run", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--markdown", type=Path)
    a = p.parse_args()
    files = sorted(f for f in a.tasks.rglob("*.yaml"))
    checked = validate(files, a.data)
    loaded = [f for f, (ok, _) in checked.items() if ok]
    ran = run(loaded, a.data, a.target, a.timeout) if a.run and loaded else {}
    rows = [f"| task file | loads | run (target {a.target}) |", "|---|---|---|"]
    for f, (ok, detail) in checked.items():
        rel = f.relative_to(a.tasks)
        outcome = ran.get(detail, "not run") if ok else "-"
        rows.append(f"| `{rel}` | {'yes' if ok else 'no: ' + detail.replace('|', '/')} | {outcome} |")
    complete = sum(v.startswith("complete") for v in ran.values())
    rows.append("")
    rows.append(f"{len(loaded)} of {len(files)} files load; {complete} run to their target of {a.target}.")
    text = "\n".join(rows)
    print(text)
    if a.markdown:
        a.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
