"""Streaming dedup benchmark: minhash_dedup at 10k/100k/1M records, rouge_dedup at 100k, the
recall of rouge_dedup's pruning against exhaustive ROUGE-L on a 5k sample, and minhash_dedup's
threshold contract (recall and false positives per Jaccard bin on planted pairs).

    python -m bench.dedup_bench                      # the full table (docs/benchmarks.md); exit 1 on a miss
    python -m bench.dedup_bench --quick              # no 1M / 100k rouge run: those targets say "not measured"
    python -m bench.dedup_bench --minhash 10000 100000 --rouge 20000 --recall 2000 --planted 500

Records are synthetic texts of 20-60 words drawn from a Zipf-like vocabulary (so common
words recur as in real text); a fraction ``--dup-fraction`` are near duplicates: an earlier
text with up to 40% of its words deleted, replaced or followed by an inserted word. Each
measurement runs in a fresh child process and streams records in chunks of 10,000, so the
peak RSS is the filter's (plus one chunk), and the time counted is only ``check``/``accept``:
what the filter adds to a run. Wall and CPU seconds are both given, with the 1-minute load
average at the end of each run, since the machine may be shared (CPU seconds grow much less
with other processes' load than wall seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench import dedup_planted
from bench.dedup_rouge_recall import rouge_recall

REPO = Path(__file__).resolve().parents[1]
CHUNK = 10_000
VOCAB = 30_000


class TextSource:
    """Deterministic synthetic texts, generated lazily (memory does not grow with n)."""

    def __init__(self, dup_fraction: float = 0.1, seed: int = 0, max_edit: float = 0.4) -> None:
        self.rng = np.random.default_rng(seed)
        ranks = np.arange(1, VOCAB + 1)
        p = 1.0 / (ranks + 2.7)
        self.p = p / p.sum()
        self.vocab = np.array([_word(i) for i in range(VOCAB)], dtype=object)
        self.dup_fraction, self.max_edit = dup_fraction, max_edit
        self.recent: list[list[str]] = []  # sources of near duplicates (bounded)

    def _draw(self, n: int) -> list[str]:
        return self.vocab[self.rng.choice(VOCAB, size=n, p=self.p)].tolist()

    def texts(self, n: int) -> list[str]:
        rng = self.rng
        lengths = rng.integers(20, 61, size=n)
        dup = rng.random(n) < self.dup_fraction
        fresh = self._draw(int(lengths.sum()) + 1)
        spare = self._draw(n * 8 + 100)
        pos = spare_pos = 0
        out: list[str] = []
        for i in range(n):
            if dup[i] and self.recent:
                src = self.recent[int(rng.integers(len(self.recent)))]
                rate = rng.uniform(0.0, self.max_edit)
                words: list[str] = []
                for w, u in zip(src, rng.random(len(src)).tolist()):
                    if u < rate / 3:  # delete
                        continue
                    if u < 2 * rate / 3:  # replace
                        words.append(spare[spare_pos % len(spare)])
                        spare_pos += 1
                        continue
                    words.append(w)
                    if u < rate:  # insert after
                        words.append(spare[spare_pos % len(spare)])
                        spare_pos += 1
            else:
                k = int(lengths[i])
                words = fresh[pos : pos + k]
                pos += k
            if len(self.recent) < 5000:
                self.recent.append(words)
            else:
                self.recent[int(rng.integers(5000))] = words
            out.append(" ".join(words))
        return out


def _word(i: int) -> str:
    """A pronounceable pseudo-word per rank (so tokenisation sees ordinary words)."""
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    s = ""
    i += 1
    while i:
        i, r = divmod(i, len(consonants) * len(vowels))
        s += consonants[r % len(consonants)] + vowels[r // len(consonants)]
    return s


def records(n: int, dup_fraction: float, seed: int = 0) -> Iterator[list[dict[str, str]]]:
    """Chunks of ``{"text": ...}`` records, ``n`` in all."""
    source = TextSource(dup_fraction, seed)
    done = 0
    while done < n:
        k = min(CHUNK, n - done)
        yield [{"text": t} for t in source.texts(k)]
        done += k


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stream(kind: str, n: int, dup_fraction: float) -> dict[str, Any]:
    """Stream ``n`` records through a fresh block (in this process)."""
    from fms_dgt.blocks.dedup.minhash import MinHashDedup
    from fms_dgt.blocks.dedup.rouge import RougeDedup

    block: Any = MinHashDedup(fields=["text"]) if kind == "minhash" else RougeDedup(fields=["text"])
    if kind == "datasketch":
        block = _DatasketchDedup()
    wall = cpu = 0.0
    rejected = 0
    base = _rss_mb()
    for chunk in records(n, dup_fraction):
        t0, c0 = time.perf_counter(), time.process_time()
        for rec in chunk:
            if block.check(rec) is None:
                block.accept(rec)
            else:
                rejected += 1
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    out = {"kind": kind, "n": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rejected": rejected}
    out.update(peak_rss_mb=round(_rss_mb()), rss_before_mb=round(base), load_avg=round(os.getloadavg()[0], 1))
    if kind == "rouge":
        out["comparisons"] = block.comparisons
    return out


class _DatasketchDedup:
    """The same streaming rule on datasketch (MinHash.update_batch + MinHashLSH), as a baseline."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128) -> None:
        from datasketch import MinHash, MinHashLSH

        from fms_dgt.blocks.dedup.lsh import words

        self.words, self.MinHash = words, MinHash
        self.perms = MinHash(num_perm=num_perm, seed=1).permutations
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.last: Any = None
        self.count = 0

    def check(self, rec: dict[str, str]) -> str | None:
        toks = self.words(rec["text"])
        grams = {" ".join(toks[i : i + 2]).encode() for i in range(max(1, len(toks) - 1))}
        m = self.MinHash(num_perm=len(self.perms[0]), permutations=self.perms, scheme="legacy")
        m.update_batch(list(grams))
        self.last = m
        return "near duplicate" if self.lsh.query(m) else None

    def accept(self, rec: dict[str, str]) -> None:
        self.lsh.insert(str(self.count), self.last)
        self.count += 1


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.dedup_bench", "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# issue 4's targets: (kind, records, wall seconds at most); memory and recall below
TIME_TARGETS = (("minhash", 100_000, 20.0), ("minhash", 1_000_000, 180.0), ("rouge", 100_000, 60.0))
MAX_RSS_MB = 2048
MIN_RECALL = 0.95
# "roughly linear" (minhash, measured at 10k/100k/1M): time per record at the largest size at
# most this many times that at the smallest. rouge_dedup's growth is reported, not held to it:
# at its low Jaccard bound (0.54 for ROUGE-L 0.7) the LSH proposes more unrelated candidates
# as the index grows, the price of its >= 95% recall (docs/benchmarks.md, "Dedup")
MAX_PER_RECORD_GROWTH = 2.0
LINEAR_KINDS = ("minhash",)
# --quick (and ``python -m bench.run_all --quick``): the sizes of a smoke test
QUICK: dict[str, Any] = {
    "minhash": (10_000, 100_000),
    "rouge": (2_000, 20_000),
    "datasketch": (10_000,),
    "recall_n": 1_000,
    "planted_pairs": 300,
}


def targets(
    rows: list[dict[str, Any]], recall: dict[str, Any] | None, planted: dict[str, Any] | None = None
) -> list[tuple[str, bool | None, str]]:
    """Every target: (what, met, figure), with ``met`` None and the figure "not measured"
    where this run did not measure it (a --quick run leaves out the 1M-record size)."""
    out: list[tuple[str, bool | None, str]] = []
    by = {(r["kind"], r["n"]): r for r in rows}
    for kind, n, limit in TIME_TARGETS:
        what = f"{kind} {n:,} records <= {limit:.0f} s"
        if (kind, n) in by:
            wall = by[kind, n]["wall_s"]
            out.append((what, wall <= limit, f"{wall:.1f} s"))
        else:
            out.append((what, None, "not measured"))
    for kind in ("minhash", "rouge"):
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["n"])
        what = f"{kind} peak RSS <= {MAX_RSS_MB} MB"
        if mine:
            peak = max(r["peak_rss_mb"] for r in mine)
            out.append((what, peak <= MAX_RSS_MB, f"{peak} MB"))
        else:
            out.append((what, None, "not measured"))
        if kind not in LINEAR_KINDS:
            continue
        if len(mine) >= 2 and mine[-1]["n"] >= 10 * mine[0]["n"]:
            small, large = (r["wall_s"] / r["n"] for r in (mine[0], mine[-1]))
            growth = large / small if small else float("inf")
            what = f"{kind} time per record {mine[0]['n']:,} -> {mine[-1]['n']:,} grows <= {MAX_PER_RECORD_GROWTH}x"
            out.append((what, growth <= MAX_PER_RECORD_GROWTH, f"{growth:.2f}x"))
        else:
            what = f"{kind} time per record over a 10x size range grows <= {MAX_PER_RECORD_GROWTH}x"
            out.append((what, None, "not measured"))
    what = (
        f"rouge pair recall >= {MIN_RECALL:.0%}"
        + (f" on {recall['n']:,}" if recall else "")
        + " (no false pairs)"
    )
    if recall:
        ok = recall["pair_recall"] >= MIN_RECALL and recall["false_pairs"] == 0
        out.append((what, ok, f"{recall['pair_recall']:.1%}, {recall['false_pairs']} false"))
    else:
        out.append((what, None, "not measured"))
    t = planted["threshold"] if planted else 0.8
    for kind, what, worst, ok_if in (
        ("recall", f"minhash caught >= 95% at Jaccard >= {t:g} (planted pairs)", min, lambda x: x >= 0.95),
        (
            "false positive",
            f"minhash flagged < 1% at Jaccard <= {t - 0.1:.2f} (planted pairs)",
            max,
            lambda x: x < 0.01,
        ),
    ):
        bins = [r for r in planted["rows"] if r["kind"] == kind] if planted else []
        if bins:
            figure = worst(r["flagged"] for r in bins)
            n = sum(r["pairs"] for r in bins)
            out.append((what, ok_if(figure), f"worst bin {figure:.2%} ({n:,} pairs)"))
        else:
            out.append((what, None, "not measured"))
    return out


def verdict(checks: list[tuple[str, bool | None, str]]) -> str:
    """PASS only when every target was measured and met; PART when none failed but some
    were not measured; MISS when one failed."""
    if any(ok is False for _, ok, _ in checks):
        return "MISS"
    return "PART" if any(ok is None for _, ok, _ in checks) else "PASS"


def run(
    minhash: list[int] | tuple[int, ...] = (10_000, 100_000, 1_000_000),
    rouge: list[int] | tuple[int, ...] = (10_000, 100_000),
    datasketch: list[int] | tuple[int, ...] = (10_000, 100_000),
    recall_n: int = 5_000,
    dup_fraction: float = 0.1,
    planted_pairs: int = 2_000,
) -> dict[str, Any]:
    """Every measurement, each in a fresh child process; ``pass`` is whether all targets held."""
    rows = []
    for kind, sizes in (("minhash", minhash), ("datasketch", datasketch), ("rouge", rouge)):
        for n in sizes:
            row = _child([kind, str(n), "--dup-fraction", str(dup_fraction)])
            rows.append(row)
            print(
                f"{kind:<11} {n:>9,} records  wall {row['wall_s']:>7.1f} s  cpu {row['cpu_s']:>7.1f} s  "
                f"{row['wall_s'] / n * 1e6:>6.1f} us/record  peak RSS {row['peak_rss_mb']:>5} MB "
                f"(before {row['rss_before_mb']} MB)  rejected {row['rejected']:,}  "
                f"load {row['load_avg']}",
                flush=True,
            )
    recall = rouge_recall(recall_n, dup_fraction) if recall_n else None
    planted = dedup_planted.measure(0.8, planted_pairs) if planted_pairs else None
    checks = targets(rows, recall, planted)
    return {
        "runs": rows,
        "recall": recall,
        "planted": planted,
        "dup_fraction": dup_fraction,
        "targets": [{"target": t, "pass": ok, "figure": f} for t, ok, f in checks],
        "verdict": verdict(checks),
        "pass": verdict(checks) == "PASS",
    }


def report(result: dict[str, Any]) -> None:
    recall = result["recall"]
    if recall:
        print(
            f"rouge recall @{recall['threshold']} on {recall['n']:,}: {recall['found']}/{recall['pairs']} pairs "
            f"({recall['pair_recall']:.1%}), {recall['false_pairs']} false; streaming rejects "
            f"{recall['rejected_pruned']} vs {recall['rejected_exhaustive']} exhaustive; "
            f"{recall['comparisons']:,} exact comparisons of {recall['all_pairs']:,} pairs"
        )
    if result.get("planted"):
        dedup_planted.report(result["planted"])
    for t in result["targets"]:
        mark = "NOT MEASURED" if t["pass"] is None else "PASS" if t["pass"] else "MISS"
        print(f"  {mark:<12}  {t['target']}: {t['figure']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minhash", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--rouge", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--datasketch", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--recall", type=int, default=5_000, help="sample size for the recall check (0: skip)")
    ap.add_argument("--planted", type=int, default=2_000, help="planted pairs per Jaccard bin (0: skip)")
    ap.add_argument(
        "--quick", action="store_true", help="smoke-test sizes (no 1M run); unmeasured targets say so"
    )
    ap.add_argument("--dup-fraction", type=float, default=0.1)
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_stream(args.child[0], int(args.child[1]), args.dup_fraction)))
        return 0
    if args.quick:
        result = run(dup_fraction=args.dup_fraction, **QUICK)
    else:
        result = run(args.minhash, args.rouge, args.datasketch, args.recall, args.dup_fraction, args.planted)
    report(result)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 1 if result["verdict"] == "MISS" else 0


if __name__ == "__main__":
    sys.exit(main())
