"""Census of the quantizers' exact ties against the official-expression oracles.

For every quantizer family, mode, arithmetic and bit-width, builds the constructed ties and
their float neighbours (tests/quant/tiecases.py), and counts the points where refq's codes,
values or integer-form codes differ from the oracle. Needs torch and mpmath (the oracles).

    PYTHONPATH=. python3 tools/tie_census.py                  # float64, bits 2..8
    PYTHONPATH=. python3 tools/tie_census.py --arith float32_cpu float32_cuda --bits 4 8
    PYTHONPATH=. python3 tools/tie_census.py --json out.json --bits 2 3 4 5 6 7 8 16

Exit status 1 when any mismatch is found.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from tests.quant.tiecases import BITS, FAMILIES, cases, run_case

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="*", default=list(FAMILIES))
    ap.add_argument("--bits", nargs="*", type=int, default=list(BITS))
    ap.add_argument("--arith", nargs="*", default=["float64"])
    ap.add_argument("--int-sample", type=int, default=12)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--torch-log", action="store_true",
                    help="oracles use torch's log/log2 instead of correctly rounded ones")
    a = ap.parse_args(argv)
    if a.torch_log:
        import torch

        from tests.quant import tiecases

        tiecases.ORACLE_LOG.update(log2=torch.log2, ln=torch.log)
    rows: dict[tuple[str, str, str, int], dict[str, Any]] = defaultdict(
        lambda: {"ties": 0, "points": 0, "codes": 0, "values": 0, "int": 0, "cases": 0,
                 "na": 0, "first": None})
    t0 = time.time()
    for fam in a.families:
        for ar in a.arith:
            for b in a.bits:
                for c in cases(fam, b, ar):
                    r = run_case(c, a.int_sample)
                    row = rows[(c.family, c.mode, ar, b)]
                    row["cases"] += 1
                    if r["error"]:
                        row["na"] += 1
                        continue
                    for k in ("ties", "points", "codes", "values", "int"):
                        row[k] += r[k]
                    if r["first"] and row["first"] is None:
                        row["first"] = [c.label, *r["first"]]
                    if a.verbose and (r["codes"] or r["values"] or r["int"]):
                        print(c.family, c.mode, ar, b, c.label, r, flush=True)
    bad = 0
    print(f"{'family':14} {'mode':18} {'arith':13} {'bits':>4} {'ties':>7} {'points':>7} "
          f"{'codes':>6} {'values':>6} {'int':>5}")
    for (fam, mode, ar, b), r in sorted(rows.items()):
        na = " (n/a)" if r["na"] == r["cases"] else ""
        print(f"{fam:14} {mode:18} {ar:13} {b:4d} {r['ties']:7d} {r['points']:7d} "
              f"{r['codes']:6d} {r['values']:6d} {r['int']:5d}{na}")
        bad += r["codes"] + r["values"] + r["int"]
    print(f"total mismatches {bad}; {time.time() - t0:.0f} s")
    if a.json:
        out = [{"family": k[0], "mode": k[1], "arith": k[2], "bits": k[3], **v}
               for k, v in sorted(rows.items())]
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
