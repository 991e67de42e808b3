"""Benchmark: generating the committed golden set and verifying the committed golden/, with
the time split by case kind (kernel, requantize, block, program).

    python tools/bench/golden.py [--repeat 3] [--only PATTERN]

``--only`` matches over every registered case, extended (not committed) ones included, like
``refq golden generate --only``; verification reads ``--committed`` (default golden/).

Each repetition runs generation and verification in two fresh interpreters (no warm
caches: lowering, bundled data), so a kind's time includes the work its cases share — e.g.
the first block case of a (method, bits) pays for lowering that spec; the min-max block
cases (sorted first) pay for lowering the full digits model, which its program case then
reuses. Reported: CPU seconds (``time.process_time``, fair under machine load) and
wall seconds per kind, the median over the repetitions, plus the whole-process wall time
(imports included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys, time
from pathlib import Path
from refq.golden import cases, generate, verify
phase, path, only = sys.argv[1], Path(sys.argv[2]), sys.argv[3] or None
cpu, wall = {}, {}
if phase == "generate":
    wall = generate(path, only, force=True, progress=False, cpu=cpu)
else:
    results = verify(path, progress=False, cpu=cpu)
    bad = [r.name for r in results if not r.ok]
    if bad:
        sys.exit(f"verify failed: {bad}")
kinds = {n: e.kind for n, e in cases().items()}
print(json.dumps({"cpu": cpu, "wall": wall, "kinds": kinds}))
"""


ENV = dict(os.environ)


def group(name: str, kind: str) -> str:
    """The row of the table a case counts in: its kind, split by family or model."""
    if kind == "block":
        return "block: min-max, 65 tokens" if ".minmax." in name else "block: methods, 17 tokens"
    if kind == "program":
        return "program: " + name.split(".")[1]
    return f"{kind}: {name.split('.')[0]}"


def child(phase: str, path: Path, only: str) -> tuple[dict[str, float], dict[str, float], float]:
    """(cpu by kind, wall by kind, process wall seconds) of one fresh run of ``phase``."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, phase, str(path), only], cwd=ROOT,
                         capture_output=True, text=True, check=True, env=ENV)
    total = time.perf_counter() - t0
    d = json.loads(out.stdout.strip().splitlines()[-1])
    cpu: dict[str, float] = defaultdict(float)
    wall: dict[str, float] = defaultdict(float)
    for name, secs in d["cpu"].items():
        cpu[group(name, d["kinds"][name])] += secs
    for name, secs in d["wall"].items():
        wall[group(name, d["kinds"][name])] += secs
    return dict(cpu), dict(wall), total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="",
                    help="case pattern over every registered case (default: the committed set)")
    ap.add_argument("--committed", type=Path, default=ROOT / "golden",
                    help="the set to verify (default: the committed golden/)")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) for the runs")
    a = ap.parse_args()
    if a.blas_threads is not None:
        ENV.update(OPENBLAS_NUM_THREADS=str(a.blas_threads), OMP_NUM_THREADS=str(a.blas_threads))
    runs: dict[str, list[tuple[dict[str, float], dict[str, float], float]]] = {
        "generate": [], "verify": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.repeat):
            runs["generate"].append(child("generate", Path(tmp) / "g", a.only))
            runs["verify"].append(child("verify", a.committed, a.only))
    kinds = sorted({k for rs in runs.values() for r in rs for k in r[0]})
    counts: dict[str, int] = defaultdict(int)
    from refq.golden import select

    for e in select(a.only or None):
        counts[group(e.name, e.kind)] += 1
    threads = ENV.get("OPENBLAS_NUM_THREADS", "default")
    print(f"median of {a.repeat} fresh runs; BLAS threads: {threads}")
    print("| case group | cases | generate CPU s | generate wall s | verify CPU s |")
    print("|---|---|---|---|---|")
    for k in [*kinds, "all"]:
        def med(phase: str, i: int, kind: str = k) -> float:
            parts = [r[0] if i == 0 else r[1] for r in runs[phase]]
            vals = [sum(p.values()) if kind == "all" else p.get(kind, 0.0) for p in parts]
            return statistics.median(vals)

        n = sum(counts.values()) if k == "all" else counts[k]
        print(f"| {k} | {n} | {med('generate', 0):.2f} | {med('generate', 1):.2f} | "
              f"{med('verify', 0):.2f} |")
    for phase in runs:
        print(f"{phase}: whole process wall {statistics.median(r[2] for r in runs[phase]):.1f} s"
              " (imports and hashing included)")


if __name__ == "__main__":
    main()
