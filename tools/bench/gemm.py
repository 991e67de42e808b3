"""Benchmark: refq.intmath.exact_matmul against NumPy matmul on DeiT-S shapes.

Prints, for each shape and batch, the median time of exact_matmul on int8 operands and its
ratio to NumPy float32, float64 and int64 matmul of the same shape, all measured in this
run. Targets (issue 2): ratio to float32 <= 1.25, speed-up over int64 >= 20.

    python tools/bench/gemm.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from refq.intmath import exact_matmul

SHAPES = [  # (name, a shape, b shape) with the batch prepended to a (and b for attention)
    ("qkv   197x384 @ 384x1152", (197, 384), (384, 1152), False),
    ("fc1   197x384 @ 384x1536", (197, 384), (384, 1536), False),
    ("fc2   197x1536 @ 1536x384", (197, 1536), (1536, 384), False),
    ("q@kT  6x197x64 @ 6x64x197", (6, 197, 64), (6, 64, 197), True),
]


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--int64-repeat", type=int, default=3, help="int64 matmul is slow")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'shape':28} {'batch':>5} {'exact ms':>9} {'/f32':>6} {'/f64':>6} {'i64/exact':>9}")
    worst_f32, worst_i64 = 0.0, float("inf")
    for name, sa, sb, batched_b in SHAPES:
        for batch in (1, 8):
            a = rng.integers(-128, 128, (batch, *sa), dtype=np.int8)
            b = rng.integers(-128, 128, ((batch, *sb) if batched_b else sb), dtype=np.int8)
            a32, b32 = a.astype(np.float32), b.astype(np.float32)
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            ai, bi = a.astype(np.int64), b.astype(np.int64)
            assert np.array_equal(exact_matmul(a, b), ai @ bi)
            t_exact = median_time(lambda: exact_matmul(a, b), args.repeat)
            t_f32 = median_time(lambda: a32 @ b32, args.repeat)
            t_f64 = median_time(lambda: a64 @ b64, args.repeat)
            t_i64 = median_time(lambda: ai @ bi, args.int64_repeat)
            worst_f32 = max(worst_f32, t_exact / t_f32)
            worst_i64 = min(worst_i64, t_i64 / t_exact)
            print(
                f"{name:28} {batch:5d} {t_exact * 1e3:9.3f} {t_exact / t_f32:6.2f} "
                f"{t_exact / t_f64:6.2f} {t_i64 / t_exact:9.1f}"
            )
    print(f"worst exact/f32 = {worst_f32:.2f} (target <= 1.25); "
          f"least int64/exact = {worst_i64:.1f} (target >= 20)")


if __name__ == "__main__":
    main()
