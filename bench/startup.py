"""Target 3, start-up: ``--help`` is instant and the first request leaves quickly.

* ``--help``: wall time of ``python -m fms_dgt.run --help`` (interpreter start included).
* first request: wall-clock time from spawning the CLI to the stub receiving its first
  request, on the bench task with the ``openai`` engine (the stub is already up, so no model
  load is counted). Both processes read the same clock (``time.time``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from typing import Any

from bench.harness import StubProcess, cli_command, median, print_table, run_measured, verdict

TARGET_HELP = 0.5
TARGET_FIRST = 1.5


def run(repeats: int = 5) -> dict[str, Any]:
    helps = []
    for _ in range(repeats):
        res = run_measured([sys.executable, "-m", "fms_dgt.run", "--help"])
        helps.append(res.wall)
    firsts = []
    with StubProcess(0.0, 0.0) as stub:
        for _ in range(repeats):
            stub.reset()
            with tempfile.TemporaryDirectory(prefix="dgt-bench-") as out:
                res = run_measured(cli_command([stub.url], 20, out))
            if res.returncode != 0:
                raise RuntimeError(res.stderr[-2000:])
            firsts.append(stub.stats()["first_request"] - res.started)
    s = {"help": median(helps), "first_request": median(firsts), "helps": helps, "firsts": firsts}
    s["pass"] = s["help"] < TARGET_HELP and s["first_request"] < TARGET_FIRST
    return s


def report(s: dict[str, Any]) -> None:
    print_table(
        "start-up",
        [
            (
                "--help",
                f"median {s['help']:.3f}s (target < {TARGET_HELP}s) "
                f"{verdict(s['help'] < TARGET_HELP)}; runs " + ", ".join(f"{x:.3f}" for x in s["helps"]),
            ),
            (
                "first request",
                f"median {s['first_request']:.3f}s after spawn (target < {TARGET_FIRST}s) "
                f"{verdict(s['first_request'] < TARGET_FIRST)}; runs "
                + ", ".join(f"{x:.3f}" for x in s["firsts"]),
            ),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    s = run(p.parse_args(argv).repeats)
    report(s)
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
