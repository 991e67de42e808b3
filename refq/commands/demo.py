"""``refq demo``: show the pipeline end to end with no arguments and no download."""

from __future__ import annotations

import argparse
import time

import numpy as np

from refq.intmath import (
    ROUNDINGS,
    exact_matmul,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_shift,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="seed of the random operands")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    print("refq demo — integer ALU (refq.intmath)\n")

    print("Named rounding of x / 2 for ties and near-ties:")
    x = np.array([-5, -3, -1, 1, 3, 5], dtype=np.int64)
    print(f"  {'x':>10} " + " ".join(f"{v:>4d}" for v in x))
    for mode in ROUNDINGS:
        print(f"  {mode:>10} " + " ".join(f"{v:>4d}" for v in round_shift(x, 1, mode)))

    a = rng.integers(-128, 128, (197, 1536), dtype=np.int8)
    w = rng.integers(-128, 128, (1536, 384), dtype=np.int8)
    acc = exact_matmul(a, w)
    oracle = a.astype(object) @ w.astype(object)
    exact = bool((acc.astype(object) == oracle).all())
    print(f"\nExact int8 GEMM 197x1536 @ 1536x384: matches Python-int oracle: {exact}")

    m, s = quantize_multiplier(0.0123)
    out = multiply_by_quantized_multiplier(np.clip(acc, -(2**31), 2**31 - 1), m, s)
    print(
        f"TFLite requantization by 0.0123 → multiplier {m}, shift {s}; "
        f"first outputs {out[0, :6].tolist()}"
    )
    print(f"\ndone in {time.perf_counter() - t0:.2f} s")
    return 0 if exact else 1
