"""``refq golden``: generate, verify, export, diff and list golden vectors."""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="golden_command", metavar="ACTION", required=True)
    g = sub.add_parser("generate", help="write golden cases into a new folder")
    g.add_argument("--out", type=Path, required=True, help="output folder (created atomically)")
    g.add_argument("--only", metavar="PATTERN", help="comma-separated glob(s) of case names")
    g.add_argument("--force", action="store_true", help="replace an existing output folder")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    v = sub.add_parser(
        "verify", help="check hashes and re-compute every case; exit 0 iff all match"
    )
    v.add_argument("dir", type=Path)
    v.add_argument("--quiet", action="store_true", help="print failures and the summary only")
    e = sub.add_parser("export", help="export a golden set as $readmemh hex, raw binary or C")
    e.add_argument("dir", type=Path)
    e.add_argument("--format", choices=["hex", "bin", "c"], required=True)
    e.add_argument("--out", type=Path, help="output folder (default: DIR_<format>)")
    e.add_argument("--force", action="store_true", help="replace an existing output folder")
    d = sub.add_parser("diff", help="compare two golden sets or case folders tensor by tensor")
    d.add_argument("a", type=Path)
    d.add_argument("b", type=Path)
    lst = sub.add_parser("list", help="list the registered golden cases")
    lst.add_argument("--only", metavar="PATTERN")


def run(args: argparse.Namespace) -> int:
    from refq import golden

    cmd = args.golden_command
    if cmd == "generate":
        t0 = time.perf_counter()
        timings = golden.generate(args.out, args.only, args.force, progress=not args.quiet)
        by_kind: dict[str, float] = defaultdict(float)
        table = golden.cases()
        for name, secs in timings.items():
            by_kind[table[name].kind] += secs
        split = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(by_kind.items()))
        print(
            f"wrote {len(timings)} cases to {args.out} in {time.perf_counter() - t0:.2f} s "
            f"({split})"
        )
        return 0
    if cmd == "verify":
        results = golden.verify(args.dir, progress=not args.quiet)
        bad = [r for r in results if not r.ok]
        for r in results:
            if not r.ok:
                print(f"FAIL {r.name}")
                for p in r.problems:
                    print(f"     {p}")
            elif not args.quiet:
                print(f"ok   {r.name}")
        print(
            f"{len(results) - len(bad)} of {len(results)} cases match"
            + ("" if not bad else f"; {len(bad)} FAIL")
        )
        return 1 if bad else 0
    if cmd == "export":
        out = args.out or args.dir.with_name(f"{args.dir.name}_{args.format}")
        n = golden.export(args.dir, args.format, out, force=args.force)
        print(f"exported {n} files to {out}")
        return 0
    if cmd == "diff":
        report = golden.diff(args.a, args.b)
        differ = 0
        for case, rows in report.items():
            for row in rows:
                if not row.equal:
                    differ += 1
                print(f"{'equal' if row.equal else 'DIFF '} {case}/{row.name}: {row.detail}")
        print(f"{differ} tensor(s) differ")
        return 1 if differ else 0
    for entry in golden.select(args.only):
        print(f"{entry.name:60} {entry.kind:8} seed={entry.seed}  {entry.description}")
    return 0
