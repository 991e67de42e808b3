"""Benchmark: refq.intmath.exact_matmul against NumPy matmul on DeiT-S shapes.

For each shape and batch, with int8 operands, prints the median time of exact_matmul and its
ratio to NumPy float32, float64 and int64 matmul of the same shape, all timed round-robin in
this run. Targets (issue 2): exact/f32 <= 1.25 and int64/exact >= 20. The last two columns
time the explicit int32 result (``out_dtype=np.int32``, exact when K·max|a|·max|b| < 2^31):
its ratio to float32 and NumPy int64's ratio to it. ``blocks /f32``: the exact int32 row
blocks the interpreter's fused chains consume (``refq.intmath.gemm_blocks``, blocks of
2^16 elements, every block read by the loop and nothing written back) against float32.

Every shape is run once before any timing: glibc's malloc raises its mmap threshold after
the first large frees, and until then each fresh buffer costs page faults that dominate
small matmuls (seen here: the same conversion took 0.87 ms cold and 0.12 ms warm). The
numbers are steady-state, as in any long-running process.

    python tools/bench/gemm.py [--rounds N] [--threads T] [--cpu]

--threads limits the BLAS threads (threadpoolctl) for every candidate alike; --cpu times with
process CPU time (user+sys of all threads) instead of wall time, which is steadier when other
processes share the cores (then multi-threaded BLAS wall times swing by 10x and more).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from timing import (
    add_timing_arguments,
    blas_limit,
    chosen_clock,
    interleaved_medians,
    timing_summary,
)

from refq.intmath import exact_matmul
from refq.intmath.gemm_blocks import exact_matmul_blocks

CLOCK: Callable[[], float] = time.perf_counter


def medians(
    candidates: Mapping[str, Callable[[], object]], rounds: int, warmup: int = 2
) -> dict[str, float]:
    """interleaved_medians with the clock chosen on the command line."""
    return interleaved_medians(candidates, rounds, warmup, CLOCK)


SHAPES = [  # name, a shape (batch prepended), b shape, b batched too
    ("qkv   197x384 @ 384x1152", (197, 384), (384, 1152), False),
    ("fc1   197x384 @ 384x1536", (197, 384), (384, 1536), False),
    ("fc2   197x1536 @ 1536x384", (197, 1536), (1536, 384), False),
    ("q@kT  6x197x64 @ 6x64x197", (6, 197, 64), (6, 64, 197), True),
]


def bench_one(a: np.ndarray, b: np.ndarray, rounds: int) -> dict[str, float]:
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ai, bi = a.astype(np.int64), b.astype(np.int64)
    assert np.array_equal(exact_matmul(a, b), ai @ bi)
    a3 = a.reshape(-1, a.shape[-1]) if b.ndim == 2 else a.reshape(-1, *a.shape[-2:])
    b3 = b if b.ndim == 2 else b.reshape(-1, *b.shape[-2:])
    rows = max(1, (1 << 16) // b.shape[-1])

    def blocks() -> None:
        for _ in exact_matmul_blocks(a3, b3, rows):
            pass

    times = medians(
        {
            "blocks": blocks,
            "exact": lambda: exact_matmul(a, b),
            "exact32": lambda: exact_matmul(a, b, np.int32),
            "f32": lambda: a32 @ b32,
            "f64": lambda: a64 @ b64,
        },
        rounds,
    )
    times.update(medians({"i64": lambda: ai @ bi}, max(3, rounds // 10), warmup=0))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    add_timing_arguments(parser)
    args = parser.parse_args()
    global CLOCK
    CLOCK = chosen_clock(args)
    with blas_limit(args.threads):
        run(args.rounds)
    print(timing_summary(args))


def run(rounds: int) -> None:
    rng = np.random.default_rng(0)
    cases = []
    for name, sa, sb, batched_b in SHAPES:
        for batch in (1, 8):
            a = rng.integers(-128, 128, (batch, *sa), dtype=np.int8)
            b = rng.integers(-128, 128, ((batch, *sb) if batched_b else sb), dtype=np.int8)
            cases.append((name, batch, a, b))
    for _, _, a, b in cases:  # allocator warm-up (see the module docstring)
        for _ in range(3):
            exact_matmul(a, b)
            _ = a.astype(np.float32) @ b.astype(np.float32)
    print(
        f"{'shape':28} {'batch':>5} {'exact ms':>9} {'/f32':>6} {'/f64':>6} {'i64/exact':>9}"
        f" {'int32-out /f32':>14} {'i64/int32-out':>13} {'blocks /f32':>11}"
    )
    worst_f32, least_i64, worst_32, worst_blk = 0.0, float("inf"), 0.0, 0.0
    for name, batch, a, b in cases:
        t = bench_one(a, b, rounds)
        worst_f32 = max(worst_f32, t["exact"] / t["f32"])
        least_i64 = min(least_i64, t["i64"] / t["exact"])
        worst_32 = max(worst_32, t["exact32"] / t["f32"])
        worst_blk = max(worst_blk, t["blocks"] / t["f32"])
        print(
            f"{name:28} {batch:5d} {t['exact'] * 1e3:9.3f} {t['exact'] / t['f32']:6.2f} "
            f"{t['exact'] / t['f64']:6.2f} {t['i64'] / t['exact']:9.1f}"
            f" {t['exact32'] / t['f32']:14.2f} {t['i64'] / t['exact32']:13.1f}"
            f" {t['blocks'] / t['f32']:11.2f}"
        )
    print(
        f"worst exact/f32 = {worst_f32:.2f} (target <= 1.25); "
        f"least int64/exact = {least_i64:.1f} (target >= 20); "
        f"worst int32-output exact/f32 = {worst_32:.2f}; worst blocks/f32 = {worst_blk:.2f}"
    )


if __name__ == "__main__":
    main()
