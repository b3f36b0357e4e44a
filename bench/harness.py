"""Shared plumbing of the benchmark scripts: start stub servers as separate processes, run
the real CLI (``python -m fms_dgt.run``) against them and measure it from the outside.

Everything is measured on child processes (wall time, user+sys CPU and peak RSS from
``os.wait4``), so the figures include what a user pays: interpreter start, imports, task
loading, generation, postprocessing and the final writes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_TASK = REPO / "bench" / "tasks" / "bench_simple" / "task.yaml"
TASK_NAME = "bench_simple"


def child_env() -> dict[str, str]:
    """The environment of measured children: this checkout first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


class StubProcess:
    """``bench.stub_server`` in its own process (its CPU is not the measured process's)."""

    def __init__(self, latency_mean: float = 0.5, latency_sigma: float = 0.8, seed: int = 0) -> None:
        self.args = [
            sys.executable,
            "-m",
            "bench.stub_server",
            "--port",
            "0",
            "--latency-mean",
            str(latency_mean),
            "--latency-sigma",
            str(latency_sigma),
            "--seed",
            str(seed),
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> StubProcess:
        self.proc = subprocess.Popen(
            self.args, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"stub server did not start: {line!r}")
        self.url = line.split()[1]
        return self

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.root + "/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        req = urllib.request.Request(self.root + "/stats/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> StubProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class ProcResult:
    """What one child process cost, measured by the parent."""

    returncode: int
    started: float  # wall clock just before the process was spawned
    wall: float
    cpu: float  # user + sys seconds of the child
    max_rss_mb: float
    stdout: str
    stderr: str


def run_measured(cmd: Sequence[str], timeout: float = 3600) -> ProcResult:
    """Run ``cmd`` and measure it with ``wait4`` (exact CPU and peak RSS of that child)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=REPO, env=child_env(), stdout=out, stderr=err, text=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ProcResult(
            returncode=proc.returncode,
            started=started,
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            max_rss_mb=usage.ru_maxrss / 1024,
            stdout=out.read(),
            stderr=err.read(),
        )


def cli_command(
    base_urls: Sequence[str],
    records: int,
    output_dir: str | Path,
    *,
    max_concurrency: int = 32,
    max_calls: int | None = None,
    task: Path = BENCH_TASK,
    extra: Sequence[str] = (),
    near_dedup: bool = True,
) -> list[str]:
    """The exact command a user would type to run the bench task against ``base_urls``."""
    cmd = [
        sys.executable,
        "-m",
        "fms_dgt.run",
        "--task-paths",
        str(task),
        "--engine",
        "openai",
        "--base-url",
        *base_urls,
        "--model",
        "stub",
        "--max-concurrency",
        str(max_concurrency),
        "--num-outputs-to-generate",
        str(records),
        "--output-dir",
        str(output_dir),
        "--no-progress",
    ]
    if max_calls is not None:
        cmd += ["--max-concurrent-calls", str(max_calls)]
    override = near_dedup_override(Path(output_dir)) if near_dedup and task == BENCH_TASK else None
    if override is not None:
        cmd += ["--config-path", str(override)]
    return cmd + list(extra)


def near_dedup_override(folder: Path) -> Path | None:
    """Near-duplicate dedup on the bench task as records arrive, when this checkout has a
    ``minhash_dedup`` block and the ``simple`` builder does not already use it (an override
    file adds it as a task filter; the builder and task files stay as they are)."""
    from fms_dgt.blocks import BUILTIN_BLOCKS

    if "minhash_dedup" not in BUILTIN_BLOCKS:
        return None
    if "minhash_dedup" in (REPO / "data_builders" / "simple" / "simple.yaml").read_text():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench_override.yaml"
    path.write_text(
        f"tasks:\n  {TASK_NAME}:\n    filters:\n"
        "      - {name: near_dup, type: minhash_dedup, fields: [question]}\n"
    )
    return path


def dedup_blocks() -> str:
    """Which dedup runs on the bench task (for the reports)."""
    from fms_dgt.blocks import BUILTIN_BLOCKS

    simple = (REPO / "data_builders" / "simple" / "simple.yaml").read_text()
    near = "minhash_dedup" in BUILTIN_BLOCKS or "minhash_dedup" in simple
    return "exact_dedup (as records arrive + postprocessor)" + (" + minhash_dedup" if near else "")


def run_cli(base_urls: Sequence[str], records: int, **kwargs: Any) -> tuple[ProcResult, dict[str, Any]]:
    """Run the bench task through the CLI in a fresh output folder; returns the measurement
    and the task_results it wrote. Raises if the run did not complete."""
    with tempfile.TemporaryDirectory(prefix="dgt-bench-") as out:
        res = run_measured(cli_command(base_urls, records, out, **kwargs))
        results_path = Path(out) / TASK_NAME / "task_results.json"
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        final = Path(out) / TASK_NAME / "final_data.jsonl"
        results["final_lines"] = sum(1 for _ in final.open()) if final.exists() else 0
    if res.returncode != 0 or results.get("status") != "complete":
        raise RuntimeError(f"CLI run failed (status {res.returncode}):\n{res.stderr[-3000:]}")
    return res, results


def run_bare(base_url: str, requests: int, client: str, concurrency: int = 32) -> tuple[ProcResult, dict]:
    cmd = [
        sys.executable,
        "-m",
        "bench.bare_client",
        "--base-url",
        base_url,
        "--requests",
        str(requests),
        "--concurrency",
        str(concurrency),
        "--client",
        client,
    ]
    res = run_measured(cmd)
    if res.returncode != 0:
        raise RuntimeError(f"bare client failed: {res.stderr[-2000:]}")
    return res, json.loads(res.stdout.strip().splitlines()[-1])


def cpu_snapshot() -> tuple[float, float, float]:
    """(wall, CPU seconds the whole machine was busy, CPU seconds of this process and its
    live descendants). Two snapshots tell how many cores *other* processes took meanwhile,
    which is what makes a wall-clock figure on a shared machine trustworthy or not."""
    import psutil

    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: steal is time the host took from us
    busy = sum(fields[i] for i in (0, 1, 2, 5, 6, 7) if i < len(fields)) / os.sysconf("SC_CLK_TCK")
    me = psutil.Process()
    own = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            own += t.user + t.system
        except psutil.Error:
            pass
    return time.monotonic(), busy, own


def foreign_cores(before: tuple[float, float, float], exited_cpu: float = 0.0) -> float:
    """Average number of cores used by processes outside this tree since ``before``
    (``exited_cpu``: CPU of children that ended meanwhile, which psutil can no longer see)."""
    now = cpu_snapshot()
    wall = max(now[0] - before[0], 1e-9)
    return max(0.0, (now[1] - before[1]) - (now[2] - before[2]) - exited_cpu) / wall


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    print(f"\n== {title}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
