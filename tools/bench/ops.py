"""Benchmark of the refq.ops kernels on DeiT-S shapes against NumPy float64 functions.

Run: python tools/bench/ops.py [--repeats 7]
Prints, per kernel, the median time and its ratio to the float64 NumPy function on the same
shape in the same run: softmax (12,197,197), GELU (197,1536), LayerNorm (197,384).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np

from refq import ops, params


def _median(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
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

    erf = np.frompyfunc(math.erf, 1, 1)
    try:
        from scipy.special import erf as serf

        def f_gelu() -> object:
            return 0.5 * hidf * (1 + serf(hidf / math.sqrt(2)))
    except ImportError:  # pragma: no cover
        def f_gelu() -> object:
            return 0.5 * hidf * (1 + erf(hidf / math.sqrt(2)).astype(np.float64))

    def f_ln() -> object:
        m = lnf.mean(-1, keepdims=True)
        return (lnf - m) / np.sqrt(lnf.var(-1, keepdims=True) + 1e-6)

    sm = {
        "refq": (att, params.refq_softmax_params(s)),
        "ibert": (att, params.ibert_softmax_params(s)),
        "shiftmax": (att, params.shiftmax_params(s)),
        "shiftmax_deploy": (att, params.shiftmax_params(s, deploy=True)),
        "tflite": (att8, params.tflite_softmax_params(s)),
        "lis": (att, params.lis_params(s)),
    }
    gp = {
        "ibert": params.ibert_gelu_params(s),
        "shiftgelu": params.shiftgelu_params(s),
        "lut": params.gelu_lut_params(s, 0, s, 0),
    }
    lp = params.layernorm_params()
    rows: list[tuple[str, float, float]] = []
    base = _median(f_softmax, args.repeats)
    for v, (x, p) in sm.items():
        rows.append((f"softmax/{v} (12,197,197)",
                     _median(lambda x=x, p=p, v=v: ops.softmax(x, p, v), args.repeats), base))
    base = _median(f_gelu, args.repeats)
    for v, p in gp.items():
        rows.append((f"gelu/{v} (197,1536)",
                     _median(lambda p=p, v=v: ops.gelu(hid, p, v), args.repeats), base))
    base = _median(f_ln, args.repeats)
    for v in ("refq", "ibert", "ivit"):
        rows.append((f"layernorm/{v} (197,384)",
                     _median(lambda v=v: ops.layernorm(ln, lp, v), args.repeats), base))
    print(f"{'kernel':34s} {'median ms':>10s} {'float64 ms':>10s} {'ratio':>7s}")
    for name, t, b in rows:
        print(f"{name:34s} {t * 1e3:10.2f} {b * 1e3:10.2f} {t / b:7.2f}")


if __name__ == "__main__":
    main()
