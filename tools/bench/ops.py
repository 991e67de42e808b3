"""Benchmark of the refq.ops kernels on DeiT-S shapes against NumPy float64 functions.

Run: python tools/bench/ops.py [--runs 3] [--rounds 7] [--clock cpu|wall]

Per kernel: its median time and its ratio to the float64 NumPy function on the same shape,
timed in the same process: softmax (12,197,197), GELU (197,1536), LayerNorm (197,384). In
each run the float64 baseline and every variant of a family are timed round-robin (one call
of each per round, after a warm-up call), so load drifts hit them alike; the ratio is
variant median / baseline median. ``--runs`` repeats the whole measurement and reports the
median over runs of both the time and the ratio. ``--clock cpu`` (default) times process
CPU time (user + sys, less sensitive to other processes on a shared machine); ``wall`` uses
perf_counter. Target: ratio <= 3 for the default variants (softmax ``refq``,
GELU ``lut``, LayerNorm ``refq``), marked ``*``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/bench: timing

from timing import interleaved_medians

from refq import ops, params

DEFAULTS = {"softmax/refq", "gelu/lut", "layernorm/refq"}


def _families() -> dict[str, tuple[str, dict[str, Callable[[], object]]]]:
    """family -> (shape label, {"float64": baseline, variant: kernel call})."""
    rng = np.random.default_rng(0)
    s = 0.05
    att = np.clip(np.round(rng.normal(0, 60, (12, 197, 197))), -32768, 32767).astype(np.int64)
    att8 = np.clip(att, -128, 127)
    hid = np.clip(np.round(rng.normal(0, 40, (197, 1536))), -128, 127).astype(np.int64)
    ln = np.clip(np.round(rng.normal(0, 30, (197, 384))), -128, 127).astype(np.int64)
    attf, hidf, lnf = att * s, hid * s, ln.astype(np.float64)

    def f_softmax() -> object:
        e = np.exp(attf - attf.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    try:
        from scipy.special import erf as serf

        def f_gelu() -> object:
            return 0.5 * hidf * (1 + serf(hidf / math.sqrt(2)))
    except ImportError:  # pragma: no cover
        erf = np.frompyfunc(math.erf, 1, 1)

        def f_gelu() -> object:
            return 0.5 * hidf * (1 + erf(hidf / math.sqrt(2)).astype(np.float64))

    def f_ln() -> object:
        m = lnf.mean(-1, keepdims=True)
        return (lnf - m) / np.sqrt(lnf.var(-1, keepdims=True) + 1e-6)

    sm: dict[str, tuple[np.ndarray, object]] = {
        "refq": (att, params.refq_softmax_params(s)),
        "ibert": (att, params.ibert_softmax_params(s)),
        "shiftmax": (att, params.shiftmax_params(s)),
        "shiftmax_deploy": (att, params.shiftmax_params(s, deploy=True)),
        "tflite": (att8, params.tflite_softmax_params(s)),
        "lis": (att, params.lis_params(s)),
    }
    gp: dict[str, object] = {
        "ibert": params.ibert_gelu_params(s),
        "shiftgelu": params.shiftgelu_params(s),
        "lut": params.gelu_lut_params(s, 0, s, 0),
    }
    lp = params.layernorm_params()
    fam_sm: dict[str, Callable[[], object]] = {"float64": f_softmax}
    for v, (x, p) in sm.items():
        fam_sm[v] = lambda x=x, p=p, v=v: ops.softmax(x, p, v)  # type: ignore[misc]
    fam_gelu: dict[str, Callable[[], object]] = {"float64": f_gelu}
    for v, p in gp.items():
        fam_gelu[v] = lambda p=p, v=v: ops.gelu(hid, p, v)  # type: ignore[misc]
    fam_ln: dict[str, Callable[[], object]] = {"float64": f_ln}
    for v in ("refq", "ibert", "ivit"):
        fam_ln[v] = lambda v=v: ops.layernorm(ln, lp, v)  # type: ignore[misc]
    return {
        "softmax": ("(12,197,197)", fam_sm),
        "gelu": ("(197,1536)", fam_gelu),
        "layernorm": ("(197,384)", fam_ln),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="whole measurements (median taken)")
    ap.add_argument("--rounds", type=int, default=7, help="timed calls per kernel per run")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    fams = _families()
    times: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    base: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for fam, (_, fns) in fams.items():
            med = interleaved_medians(fns, args.rounds, 1, clock)
            b = med.pop("float64")
            base.setdefault(fam, []).append(b)
            for v, t in med.items():
                times.setdefault(f"{fam}/{v}", []).append(t)
                ratios.setdefault(f"{fam}/{v}", []).append(t / b)
    print(f"clock: {args.clock}; median of {args.runs} run(s) x {args.rounds} round(s)")
    print(f"{'kernel':36s} {'median ms':>10s} {'float64 ms':>10s} {'ratio':>7s}")
    for name, ts in times.items():
        fam = name.split("/")[0]
        label = f"{name} {fams[fam][0]}" + (" *" if name in DEFAULTS else "")
        print(
            f"{label:36s} {statistics.median(ts) * 1e3:10.2f} "
            f"{statistics.median(base[fam]) * 1e3:10.2f} {statistics.median(ratios[name]):7.2f}"
        )


if __name__ == "__main__":
    main()
