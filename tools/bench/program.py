"""Benchmark: integer-only forward (refq.program.run of the lowered program) of the
deit_small geometry (random weights, min-max W8A8 spec built here) against refq's own
float32 forward of the same model, same run; time ratio and tracemalloc peak memory.

    python tools/bench/program.py [--batches 1 8] [--repeat 2] [--depth 12] [--threads T] [--cpu]
                                  [--ops]

Times are the best of ``--repeat`` rounds in which the two forwards take turns (so a load
change hits both); --ops adds the CPU seconds per op kind of one integer forward.

--threads limits the BLAS threads (threadpoolctl) of both forwards alike; --cpu times with
process CPU time (user+sys of all threads) instead of wall time — steadier when other
processes share the cores.

Targets (issue 6): integer time <= 2x float, integer peak memory <= 2x float.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/bench: timing

from timing import add_timing_arguments, blas_limit, chosen_clock, timing_summary

from refq.intmath.gemm import release_scratch
from refq.nn import create_model
from refq.program import lower, run
from refq.quant import Quantizer, QuantSpec, UniformQuantizer


def minmax_spec(model: Any, cal: Any) -> QuantSpec:
    _, taps = model.forward_with_taps(cal)
    w: dict[str, Quantizer] = {}
    acts: dict[str, Quantizer] = {}
    for op in model.ops():
        if op.weight:
            wt = model.params[op.weight]
            amax = np.abs(wt.reshape(wt.shape[0], -1)).max(1)
            w[op.weight] = UniformQuantizer.from_minmax(-amax, amax, 8, symmetric=True, axis=0)
        for t in op.inputs:
            if t != "input":
                x = taps[t]
                acts[t] = UniformQuantizer.from_minmax(float(x.min()), float(x.max()), 8)
    return QuantSpec("minmax", model.config.name, 8, 8, w, acts)


CLOCK: Callable[[], float] = time.perf_counter


def peak_memory(fn: Callable[[], Any]) -> int:
    """tracemalloc peak (bytes) of one call of ``fn``, with exact_matmul's reusable work
    buffers released first so that the memory they keep between calls is counted."""
    release_scratch()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def best_times(fns: list[Callable[[], Any]], repeat: int) -> list[float]:
    """Best (minimum) time of each function over ``repeat`` rounds, the functions taking
    turns within each round so that load changes hit both sides alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = CLOCK()
            fn()
            best[i] = min(best[i], CLOCK() - t)
    return best


def op_times(prog: Any, x: Any) -> dict[str, float]:
    """CPU seconds per op kind of one integer forward (the interpreter's kernel/movement
    dispatch and its fused threshold+lookup path, wrapped for this call only)."""
    mod: Any = importlib.import_module("refq.program.run")
    acc: dict[str, float] = defaultdict(float)
    execute, fused = mod._execute, mod.threshold_lookup

    def timed_execute(program: Any, op: Any, args: Any) -> Any:
        t = time.process_time()
        out = execute(program, op, args)
        acc[op.key] += time.process_time() - t
        return out

    def timed_fused(*args: Any, **kwargs: Any) -> Any:
        t = time.process_time()
        out = fused(*args, **kwargs)
        acc["threshold+lookup (fused)"] += time.process_time() - t
        return out

    mod._execute, mod.threshold_lookup = timed_execute, timed_fused
    try:
        t = time.process_time()
        run(prog, {"input": x}, keep="outputs")
        acc["(total)"] = time.process_time() - t
    finally:
        mod._execute, mod.threshold_lookup = execute, fused
    return dict(acc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--ops", action="store_true", help="also print CPU seconds per op kind")
    add_timing_arguments(ap)
    a = ap.parse_args()
    global CLOCK
    CLOCK = chosen_clock(a)
    with blas_limit(a.threads):
        bench(a)
    print(timing_summary(a))


def bench(a: argparse.Namespace) -> None:
    m64 = create_model("deit_small_patch16_224", depth=a.depth, seed=0).fold_normalization()
    rng = np.random.default_rng(0)
    cal = rng.integers(0, 256, (4, 3, 224, 224), dtype=np.uint8)
    t = time.perf_counter()
    prog = lower(m64, minmax_spec(m64, cal), cal)
    print(f"lowering: {time.perf_counter() - t:.1f} s, {len(prog.ops)} ops")
    m32 = m64.with_params(m64.params, dtype=np.float32)
    print(
        f"{'batch':>5} {'int s':>8} {'f32 s':>8} {'ratio':>6} {'int MB':>8} {'f32 MB':>8} "
        f"{'ratio':>6}"
    )
    for bsz in a.batches:
        x = rng.integers(0, 256, (bsz, 3, 224, 224), dtype=np.uint8)

        def run_int(x: Any = x) -> Any:
            return run(prog, {"input": x}, keep="outputs")

        def run_f32(x: Any = x) -> Any:
            return m32.forward(x)

        run_int()  # warm-up (caches, allocator)
        run_f32()
        ti, tf = best_times([run_int, run_f32], a.repeat)
        mi, mf = peak_memory(run_int), peak_memory(run_f32)
        print(
            f"{bsz:5d} {ti:8.3f} {tf:8.3f} {ti / tf:6.2f} {mi / 2**20:8.1f} "
            f"{mf / 2**20:8.1f} {mi / mf:6.2f}"
        )
        if a.ops:
            times = op_times(prog, x)
            total = times.pop("(total)")
            print(f"      per op kind, CPU s of one integer forward (total {total:.3f} s):")
            for key, sec in sorted(times.items(), key=lambda kv: -kv[1])[:12]:
                print(f"        {key:28} {sec:7.3f}")


if __name__ == "__main__":
    main()
