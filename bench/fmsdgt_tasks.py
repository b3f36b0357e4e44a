"""How many of IBM fms-dgt's task files load and run here unchanged.

Usage::

    python -m bench.fmsdgt_tasks --tasks /path/to/fms-dgt/tasks --data /path/to/fms-dgt/data \\
        [--run [--engine stub|default] [--target 3] [--only TEXT ...] [--max-concurrent-calls N]]
        [--markdown FILE]

Every ``*.yaml`` task file under ``--tasks`` is validated on its own (``--validate``, with
``DGT_DATA_DIR`` set to ``--data``): it loads, or the first line of what is unsupported is
reported. With ``--run``, the files that load (or those whose path contains one of
``--only``) are run together, unchanged, to ``--target`` records each (a transformation: its
first ``--target`` rows) in a temporary output folder:

* ``--engine stub`` (the default): every engine of every task is pointed at the loopback
  benchmark server (``bench/stub_server.py``, started and stopped here). Its answers are
  invented words shaped like what was asked (valid for a request's JSON schema, apart from
  string ``pattern``), so a run to target shows that a file's whole pipeline works (loading,
  requests, parsing, filters, formatting, outputs), not that the data is good. Seconds.
* ``--engine default``: the engines as the task and builder say (the embedded default model,
  SmolLM2-135M on in-process vLLM): slow on a small CPU, real text.

A generation task *runs to its target* when it ends ``complete`` with at least ``--target``
records in ``final_data``; a transformation when it ends ``complete`` with each of its first
``--target`` rows turned into a record (none failed or rejected while generating; what its
postprocessing drops, such as near duplicates, is said). The table printed (and written to ``--markdown``) has, per file, whether it
loads, whether it ran to its target and why not, with the date and the command. Nothing is
changed in the tree.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import StubProcess


def _cli(args: list[str], data: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process group: past ``timeout`` the whole group is killed (the
    in-process vLLM engine runs in a child process that would otherwise outlive it) and
    the return code is -9."""
    env = {**os.environ, "DGT_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "fms_dgt.run", "--no-progress", *args]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\ntimed out after {timeout:.0f} s"
        return subprocess.CompletedProcess(cmd, -9, out, err)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def validate(files: list[Path], data: Path) -> dict[Path, tuple[bool, str]]:
    """Per file: (loads, its task_name) or (does not, the first line of why)."""
    out: dict[Path, tuple[bool, str]] = {}
    for f in files:
        r = _cli(["--validate", "--task-paths", str(f), "--output-dir", tempfile.mkdtemp()], data, 600)
        if r.returncode == 0:
            name = next((ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("ok  ")), "?")
            out[f] = (True, name)
        else:
            lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
            detail = next((ln for ln in lines if str(f) in ln), lines[-1] if lines else "?")
            out[f] = (False, detail.replace("error: ", "").replace(str(f) + ":", "line "))
    return out


def _short(error: str) -> str:
    """An error without the long quoted values in it (generated text, a regex), so that the
    table says what kind of failure it was."""
    return re.sub(r"'[^']{40,}'", "'...'", error)[:160]


def why_not(folder: Path, doc: dict[str, Any], target: int) -> str:
    """Why a task did not reach its target: its status, then what its failed requests said
    and the commonest rejection reasons (from the task's own output files)."""
    counts = doc.get("counts", {})
    wanted = f"{target} records" if doc.get("target") is not None else f"the first {target} rows"
    parts = [f"{doc.get('status')}, {counts.get('final', 0)} records of {wanted}"]
    failed = folder / "failed.jsonl"
    if failed.exists():
        errors = Counter(_short(json.loads(ln).get("error", "?")) for ln in failed.open() if ln.strip())
        if errors:
            error, n = errors.most_common(1)[0]
            parts.append(f"{sum(errors.values())} requests failed, e.g. {error}")
    reasons = Counter[str]()
    for block, by_reason in (doc.get("rejected_by_block") or {}).items():
        for reason, n in by_reason.items():
            reasons[f"{block}: {reason}"] += n
    if reasons:
        parts.append("rejected: " + "; ".join(f"{r} ({n})" for r, n in reasons.most_common(2)))
    return "; ".join(parts)


def outcome(folder: Path, doc: dict[str, Any], target: int) -> tuple[bool, str]:
    """Whether a task ran to its target, and what to say about it.

    A generation task (``target`` in its results) runs to its target when it ends complete
    with at least ``target`` records. A transformation (no ``target``: its input is its
    target) when it ends complete with every input row turned into a record: none failed,
    none rejected while generating (an unusable answer); its postprocessing may still drop
    rows (near duplicates), which is the pipeline doing its job, and is said."""
    counts = doc.get("counts", {})
    final = counts.get("final", 0)
    complete = doc.get("status") == "complete"
    if doc.get("target") is not None:
        ok = complete and final >= target
        return (ok, f"{final} records") if ok else (False, why_not(folder, doc, target))
    rejected = folder / "rejected.jsonl"
    stages = (
        Counter(json.loads(ln).get("stage") for ln in rejected.open() if ln.strip())
        if rejected.exists()
        else Counter()
    )
    ok = complete and final > 0 and not counts.get("failed") and not stages.get("generation")
    if not ok:
        return False, why_not(folder, doc, target)
    dropped = sum(stages.values())
    return True, f"{final} records" + (f"; {dropped} rows dropped by postprocessing" if dropped else "")


def run(
    files: list[Path], data: Path, target: int, timeout: float, engine: str, calls: int | None = None
) -> dict[str, tuple[bool, str]]:
    """Run ``files`` together; per task_name: (ran to its target, what happened)."""
    out_dir = Path(tempfile.mkdtemp(prefix="fmsdgt-run-"))
    args = ["--task-paths", *map(str, files), "--output-dir", str(out_dir)]
    args += ["--num-outputs-to-generate", str(target)]
    override = out_dir / "rows.yaml"
    rc = f"runner_config:\n  max_input_rows: {target}\n"
    if calls is not None:
        # fewer calls in flight must not make a task give up sooner: a stall is counted in
        # windows of max_concurrent_calls calls, so keep the default window (5 x 32 calls)
        rc += f"  max_stalled_attempts: {max(5, math.ceil(160 / calls))}\n"
        args += ["--max-concurrent-calls", str(calls)]
    override.write_text(rc)
    args += ["--config-path", str(override)]
    stub = StubProcess(latency_mean=0.02, latency_sigma=0.5) if engine == "stub" else None
    try:
        if stub is not None:
            stub.start()
            args += ["--engine", "openai", "--model", "stub", "--base-url", stub.url]
        r = _cli(args, data, timeout)
    finally:
        if stub is not None:
            stub.stop()
    statuses: dict[str, tuple[bool, str]] = {}
    timed_out = r.stderr.rstrip().endswith(f"timed out after {timeout:.0f} s")
    for results in out_dir.rglob("task_results.json"):
        doc = json.loads(results.read_text())
        done, what = outcome(results.parent, doc, target)
        # a task the kill caught mid-run says so (its results still read "running")
        statuses[doc["task_name"]] = (
            done,
            what if done or not timed_out else f"timed out after {timeout:.0f} s: {what}",
        )
    if r.returncode not in (0, 1):
        last = r.stderr.strip().splitlines()[-1:] or ["?"]
        statuses["(run)"] = (False, f"the run ended with exit {r.returncode}: {last[0][:200]}")
    return statuses


def table(
    tasks: Path,
    checked: dict[Path, tuple[bool, str]],
    ran: dict[str, tuple[bool, str]],
    target: int,
    command: str,
    engine: str | None,
) -> str:
    """The per-file table (markdown) with the date, the command and the totals."""
    today = datetime.date.today().isoformat()
    where = {"stub": "the loopback stub server", "default": "the default model"}.get(engine or "", "")
    rows = [f"Measured {today}: `{command}`", ""]
    rows += [
        f"| task file | task_name | loads | runs to target {target} | why not |",
        "|---|---|---|---|---|",
    ]
    for f, (ok, detail) in checked.items():
        rel = f.relative_to(tasks)
        if not ok:
            rows.append(f"| `{rel}` | | no | - | {detail.replace('|', '/')} |")
            continue
        done, what = ran.get(detail, ran.get("(run)", (False, "not run")) if ran else (False, "not run"))
        cell = f"yes ({what})" if done else ("not run" if what == "not run" else "no")
        why = "" if done or what == "not run" else what.replace("|", "/")
        rows.append(f"| `{rel}` | `{detail}` | yes | {cell} | {why} |")
    loaded = sum(ok for ok, _ in checked.values())
    complete = sum(done for name, (done, _) in ran.items() if name != "(run)")
    tried = sum(ok for ok, _ in checked.values()) if "(run)" in ran else len(ran)
    rows.append("")
    summary = f"{loaded} of {len(checked)} files load"
    if engine:
        summary += f"; {complete} of {tried} run to their target of {target} on {where}"
    rows.append(summary + ".")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=Path, required=True, help="fms-dgt's tasks/ folder")
    p.add_argument("--data", type=Path, required=True, help="fms-dgt's data/ folder (DGT_DATA_DIR)")
    p.add_argument("--target", type=int, default=3, help="records (or input rows) per task")
    p.add_argument("--run", action="store_true", help="also run the files that load")
    p.add_argument("--engine", choices=("stub", "default"), default="stub", help="what --run runs on")
    p.add_argument("--only", nargs="+", default=[], help="run only files whose path contains one of these")
    p.add_argument(
        "--max-concurrent-calls", type=int, help="builder calls in flight per task (fewer on a busy CPU)"
    )
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--markdown", type=Path, help="also write the table to this file")
    a = p.parse_args()
    files = sorted(f for f in a.tasks.rglob("*.yaml"))
    checked = validate(files, a.data)
    loaded = [f for f, (ok, _) in checked.items() if ok]
    if a.only:
        loaded = [f for f in loaded if any(part in str(f) for part in a.only)]
    ran = (
        run(loaded, a.data, a.target, a.timeout, a.engine, a.max_concurrent_calls) if a.run and loaded else {}
    )
    command = "python -m bench.fmsdgt_tasks " + shlex.join(sys.argv[1:])
    text = table(a.tasks, checked, ran, a.target, command, a.engine if a.run else None)
    print(text)
    if a.markdown:
        a.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
