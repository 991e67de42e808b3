"""Mutation run over every refq reader: N mutants of files refq wrote, each read in a forked
child with a time and memory limit, judged by the oracle of ``tests/fuzz/oracle.py`` ("a
RefqError naming the file, or an output byte-identical to the original"), and the table:

    reader | mutants | RefqError | raw exception | hang | accepted, same | accepted, changed
    (legitimate) | accepted, changed (should have been caught)

plus the CLI row (``tests/fuzz/cli.py``: mutated argument lists of refq's commands).

    python tools/fuzz_readers.py --mutants 5000 --workers 2 --seed 0 --log fuzz.log

Findings (raw exceptions, hangs, unnamed RefqErrors, should-have-been-caught changes) are
listed with their mutation and a replay command.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import TextIO

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.mutate import RandomChooser
from tests.fuzz.oracle import Child, Mutant, collect, judge, make_mutant, prepare, spawn
from tests.fuzz.subjects import SUBJECTS

COLUMNS = ("refq", "raw", "hang", "same", "legit", "finding")
HEAD = ("reader", "mutants", "RefqError", "raw exception", "hang", "accepted, same output",
        "accepted, changed: legitimate", "accepted, changed: should have been caught")


def run_subject(name: str, count: int, seed: int, workers: int, timeout: float,
                base: Path, log: TextIO) -> tuple[Counter[str], list[str]]:
    """``count`` mutants of reader ``name``, at most ``workers`` children at a time."""
    p = prepare(SUBJECTS[name], base / "subject")
    counts: Counter[str] = Counter()
    findings: list[str] = []
    running: dict[int, tuple[Child, Mutant]] = {}
    k = 0
    while k < count or running:
        while k < count and len(running) < workers:
            slot = next(i for i in range(workers) if i not in running)
            m = make_mutant(p, base / f"m{slot}", RandomChooser(seed * 1_000_003 + k))
            running[slot] = (spawn(p, m.folder, timeout), m)
            m.label = f"#{k} {m.label}"
            k += 1
        for slot, (child, m) in list(running.items()):
            result = collect(child)
            if result is None:
                continue
            del running[slot]
            status, detail = judge(p, m, result)
            counts[status] += 1
            line = f"{name} {status:12} {m.label}"
            quiet = status in ("same", "legit", "refq")
            print(line if quiet else f"{line}\n    {detail.strip()[-600:]}", file=log, flush=True)
            if not quiet:
                last = detail.strip().splitlines()[-1] if detail.strip() else ""
                findings.append(f"{name} {m.label} (seed {seed}) {status}: {last}")
        time.sleep(0.002)
    return counts, findings


def replay(spec: str, seed: int) -> int:
    """Rebuild one mutant (same seed and index) in ./fuzz-replay and run its reader here."""
    import difflib

    from tests.fuzz.oracle import run_reader

    part, _, k = spec.rpartition("#")
    name = next(n for n in SUBJECTS if part in n)
    base = Path("fuzz-replay").resolve()
    p = prepare(SUBJECTS[name], base / "subject")
    m = make_mutant(p, base / "mutant", RandomChooser(seed * 1_000_003 + int(k)))
    print(f"{name} #{k}: {m.label}\nmutant folder: {m.folder}")
    if m.after is not None:
        a = m.before.decode("utf-8", "replace").splitlines()
        b = m.after.decode("utf-8", "replace").splitlines()
        for line in list(difflib.unified_diff(a, b, lineterm="", n=1))[:40]:
            print("   ", line[:200])
    result = run_reader(p, m.folder)
    print(judge(p, m, result))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mutants", type=int, default=5000, help="total, spread over readers")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per mutant")
    ap.add_argument("--only", help="comma-separated reader names (substring match)")
    ap.add_argument("--log", type=Path, default=Path("fuzz_readers.log"))
    ap.add_argument("--no-cli", action="store_true", help="leave out the CLI row")
    ap.add_argument("--replay", metavar="READER#K",
                    help="rebuild mutant K of the reader (substring of its name) with --seed "
                    "in ./fuzz-replay and show what the reader says")
    a = ap.parse_args(argv)
    if a.replay:
        return replay(a.replay, a.seed)
    names = list(SUBJECTS)
    if a.only:
        names = [n for n in names if any(o.strip() in n for o in a.only.split(","))]
    rows = len(names) + (0 if a.no_cli else 1)
    per = max(1, a.mutants // rows)
    table: dict[str, Counter[str]] = defaultdict(Counter)
    findings: list[str] = []
    t0 = time.perf_counter()
    with open(a.log, "w") as log, tempfile.TemporaryDirectory(prefix="refq-fuzz-") as tmp:
        for n, name in enumerate(names):
            base = Path(tmp) / f"s{n}"
            counts, found = run_subject(name, per, a.seed, a.workers, a.timeout, base, log)
            table[name] = counts
            findings += found
            print(f"{name}: {dict(counts)} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if not a.no_cli:
            from tests.fuzz.cli import run_cli_mutants

            counts, found = run_cli_mutants(per, a.seed, a.workers, a.timeout, Path(tmp), log)
            table["CLI"] = counts
            findings += found
            print(f"CLI: {dict(counts)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print()
    print("| " + " | ".join(HEAD) + " |")
    print("|" + "---|" * len(HEAD))
    total: Counter[str] = Counter()
    for name, c in table.items():
        c = Counter(c)
        c["refq"] += c.pop("refq-unnamed", 0)
        total += c
        print(f"| {name} | {sum(c.values())} | " + " | ".join(str(c[k]) for k in COLUMNS) + " |")
    print(f"| **all readers** | {sum(total.values())} | "
          + " | ".join(str(total[k]) for k in COLUMNS) + " |")
    unnamed = sum(c.get("refq-unnamed", 0) for c in table.values())
    print(f"\nRefqErrors not naming the mutated file: {unnamed}")
    print(f"{len(findings)} findings; {time.perf_counter() - t0:.0f} s; log {a.log}")
    for f in findings[:200]:
        print("  " + f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
