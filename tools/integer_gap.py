"""The table of docs/integer-gap.md: the integerization gap of min-max specs on the bundled
model (100 calibration images, the 400-image test split).

    python tools/integer_gap.py --bits 8 6 4 --softmax uniform log2 [--kernels PROFILE]

Spec: refq.calib.minmax.minmax_spec; fake-quant: refq.methods.fake_quant (refq.calib's one
fake-quant construction); integer: refq.program.lower + run; gap: refq.program.gap.
"""

from __future__ import annotations

import argparse

from refq.calib.minmax import minmax_spec
from refq.methods import fake_quant
from refq.nn import load_bundled
from refq.program import integer_gap, lower


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bits", type=int, nargs="+", default=[8, 6, 4])
    ap.add_argument("--softmax", nargs="+", default=["uniform", "log2"])
    ap.add_argument("--kernels", default=None,
                    help="kernel profile or family=variant items (refq.program.kernels)")
    a = ap.parse_args()
    model, data = load_bundled()
    fm = model.fold_normalization()
    cal, _ = data.split("calib")
    test, lab = data.split("test")
    print("| spec | bits | fake-quant top-1 | integer top-1 | Δ (points) | min cosine | "
          "worst tensor |")
    print("|---|---|---|---|---|---|---|")
    for sm in a.softmax:
        for bits in a.bits:
            spec = minmax_spec(fm, cal, bits, softmax=sm)
            prog = lower(fm, spec, cal, kernels=a.kernels)
            g = integer_gap(prog, fake_quant(fm, spec), test, lab)
            worst = min(g.tensors, key=lambda k: g.tensors[k][0])
            print(f"| {spec.method} | W{bits}A{bits} | {100 * g.fq_top1:.2f} | "
                  f"{100 * g.int_top1:.2f} | {100 * (g.int_top1 - g.fq_top1):+.2f} | "
                  f"{g.tensors[worst][0]:.5f} | {worst} |", flush=True)


if __name__ == "__main__":
    main()
