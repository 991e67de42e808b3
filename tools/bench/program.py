"""Benchmark: integer-only forward (refq.program.run of the lowered program) against refq's
own float32 forward of the same model, same run; time ratio and tracemalloc peak memory.

    python tools/bench/program.py [--model deit_small|deit_base|swin_tiny] [--method M]
                                  [--bits W [A]] [--batches 1 8] [--repeat 2] [--depth 12]
                                  [--threads T] [--cpu] [--ops]

Random weights (seed 0) of the named geometry (``--depth``: DeiT's block count; Swin's
blocks per stage, capped). ``--method minmax`` (default): the min-max
spec built here (per-channel symmetric weights, per-tensor activations); any other method
is refq's recipe (refq.methods) calibrated on 8 random images — ptq4vit with the cosine
metric, 20 candidates and 1 round (the Hessian search's cost buys accuracy, not a
different program: the ops and formats lowered are those of the full search). ``--bits``:
weight and activation bits (one number: both).

Times are the best of ``--repeat`` rounds in which the two forwards take turns (so a load
change hits both); --ops adds the CPU seconds per step of one integer forward (a fused
chain of ops is one line, named by its op kinds joined with ``+``).

--threads limits the BLAS threads (threadpoolctl, in the ``dev`` extra) of both forwards
alike; --cpu times with process CPU time (user+sys of all threads) instead of wall time —
steadier when other processes share the cores.

Targets: integer time <= 1.3x float at batch 8 and <= 1.5x at batch 1 (W8A8 min-max),
<= 1.5x for the W4A4 programs of the methods; integer peak memory <= 1.2x / 1.3x.
"""

from __future__ import annotations

import argparse
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
from refq.methods import quantize_model
from refq.nn import create_model
from refq.nn.configs import get_config
from refq.program import lower, run
from refq.program.plan import plan_for
from refq.quant import Quantizer, QuantSpec, UniformQuantizer


def minmax_spec(model: Any, cal: Any, w_bits: int = 8, a_bits: int = 8) -> QuantSpec:
    _, taps = model.forward_with_taps(cal)
    w: dict[str, Quantizer] = {}
    acts: dict[str, Quantizer] = {}
    for op in model.ops():
        if op.weight:
            wt = model.params[op.weight]
            amax = np.abs(wt.reshape(wt.shape[0], -1)).max(1)
            w[op.weight] = UniformQuantizer.from_minmax(-amax, amax, w_bits, symmetric=True,
                                                        axis=0)
        for t in op.inputs:
            if t != "input":
                x = taps[t]
                acts[t] = UniformQuantizer.from_minmax(float(x.min()), float(x.max()), a_bits)
    return QuantSpec("minmax", model.config.name, w_bits, a_bits, w, acts)


CLOCK: Callable[[], float] = time.perf_counter
METHODS = ("ptq4vit", "repq", "dopq", "ias", "fqvit", "tsptq")


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
    """CPU seconds per step kind of one integer forward: each step of the program's plan
    (refq.program.plan, ``keep="outputs"``) wrapped for this call only; a fused chain is
    keyed by its op kinds joined with ``+``."""
    plan = plan_for(prog, "outputs")
    acc: dict[str, float] = defaultdict(float)
    steps = list(plan.steps)

    class Timed:
        def __init__(self, step: Any) -> None:
            self.step, self.ops = step, step.ops
            self.key = "+".join(prog.ops[i].key for i in step.ops)

        def __call__(self, env: Any, checked: Any) -> None:
            t = time.process_time()
            self.step(env, checked)
            acc[self.key] += time.process_time() - t

    plan.steps[:] = [Timed(s) for s in steps]
    try:
        t = time.process_time()
        run(prog, {"input": x}, keep="outputs")
        acc["(total)"] = time.process_time() - t
    finally:
        plan.steps[:] = steps
    return dict(acc)


MODELS = {"deit_small": "deit_small_patch16_224", "deit_base": "deit_base_patch16_224",
          "swin_tiny": "swin_tiny_patch4_window7_224"}
BENCH_OPTS: dict[str, dict[str, Any]] = {"ptq4vit": {"metric": "cosine", "n": 20, "rounds": 1}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=sorted(MODELS), default="deit_small")
    ap.add_argument("--method", default="minmax",
                    help="minmax (built here) or a refq.methods recipe: " + ", ".join(METHODS))
    ap.add_argument("--bits", type=int, nargs="+", default=[8], metavar="W [A]",
                    help="weight and activation bits (one number: both)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--depth", type=int, default=12,
                    help="DeiT: blocks; Swin: blocks per stage at most (12: all)")
    ap.add_argument("--ops", action="store_true", help="also print CPU seconds per op kind")
    add_timing_arguments(ap)
    a = ap.parse_args()
    if a.method != "minmax" and a.method not in METHODS:
        ap.error(f"--method {a.method!r}: choose minmax or one of {', '.join(METHODS)}")
    if len(a.bits) not in (1, 2):
        ap.error("--bits takes W or W A")
    global CLOCK
    CLOCK = chosen_clock(a)
    with blas_limit(a.threads):
        bench(a)
    print(timing_summary(a))


def quant_spec(m64: Any, a: argparse.Namespace, cal: Any) -> QuantSpec:
    w_bits, a_bits = (a.bits * 2)[:2]
    if a.method == "minmax":
        return minmax_spec(m64, cal, w_bits, a_bits)
    return quantize_model(m64, a.method, w_bits, a_bits, cal, seed=0,
                          **BENCH_OPTS.get(a.method, {}))


def depth_override(model: str, depth: int) -> dict[str, Any]:
    """The config override for ``--depth``: DeiT's block count; for Swin each stage's
    block count capped at ``depth`` (12: Swin-T's own 2, 2, 6, 2)."""
    cfg = get_config(MODELS[model])
    if hasattr(cfg, "depths"):
        return {"depths": tuple(min(d, depth) for d in cfg.depths)}
    return {"depth": depth}


def bench(a: argparse.Namespace) -> None:
    m64 = create_model(MODELS[a.model], seed=0, **depth_override(a.model, a.depth)
                       ).fold_normalization()
    rng = np.random.default_rng(0)
    cal = rng.integers(0, 256, (8 if a.method != "minmax" else 4, 3, 224, 224), dtype=np.uint8)
    t = time.perf_counter()
    prog = lower(m64, quant_spec(m64, a, cal), cal)
    print(f"{a.model} {a.method} W{(a.bits * 2)[0]}A{(a.bits * 2)[1]} depth {a.depth}: "
          f"calibration + lowering {time.perf_counter() - t:.1f} s, {len(prog.ops)} ops")
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
            print(f"      per step kind, CPU s of one integer forward (total {total:.3f} s):")
            for key, sec in sorted(times.items(), key=lambda kv: -kv[1])[:16]:
                print(f"        {key:58} {sec:7.3f}")


if __name__ == "__main__":
    main()
