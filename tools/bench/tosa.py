"""Benchmark: refq's TOSA export of a lowered Program, and the run of that graph on Arm's TOSA
reference model and on IREE (llvm-cpu, compiled once), against refq's own integer run of the
same Program on the same input — all in one process, one BLAS thread.

    python tools/bench/tosa.py [--models digits deit_small] [--depth 1] [--kernels refq]
                               [--repeat 3] [--threads 1] [--cpu] [--no-iree]

Models: ``digits`` — the bundled digits DeiT under the min-max W8A8 spec (the golden
program case); ``deit_small`` — the deit_small_patch16_224 geometry (384 wide, 6 heads, 197
tokens) at ``--depth`` blocks with seeded random weights and a min-max W8A8 spec built on 4
random images. Each graph is exported with the program's outputs only (the logits), and the
logits of both runs are checked equal to refq's before any time is reported.

Reported per model: TOSA operator count; export seconds (refq → flatbuffer); tosa-opt
seconds (flatbuffer → MLIR); iree-compile CPU seconds (a child process); and the median run
seconds of refq, the reference model and IREE (``local-sync`` driver: one thread, in this
process), with each as a ratio to refq. Runs take turns round-robin (tools/bench/timing.py).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/bench: timing

from timing import add_timing_arguments, blas_limit, chosen_clock, interleaved_medians

from refq.program import Program, lower, run


def digits(kernels: str | None) -> tuple[Program, Any]:
    from refq.calib.minmax import minmax_spec
    from refq.nn import load_bundled

    model, data = load_bundled()
    folded = model.fold_normalization()
    calib, _ = data.split("calib")
    prog = lower(folded, minmax_spec(folded, calib[:32], 8), calib[:32], kernels=kernels,
                 name="deit_digits.minmax.w8a8")
    test, _ = data.split("test")
    return prog, np.asarray(test[:1], dtype=np.uint8)


def deit_small(depth: int, kernels: str | None) -> tuple[Program, Any]:
    from refq.calib.minmax import minmax_spec
    from refq.nn import create_model

    model = create_model("deit_small_patch16_224", depth=depth, seed=0).fold_normalization()
    rng = np.random.default_rng(0)
    cal = rng.integers(0, 256, (4, 3, 224, 224), dtype=np.uint8)
    prog = lower(model, minmax_spec(model, cal, 8), cal, kernels=kernels,
                 name=f"deit_small.depth{depth}.minmax.w8a8")
    return prog, rng.integers(0, 256, (1, 3, 224, 224), dtype=np.uint8)


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_one(name: str, prog: Program, x: Any, a: argparse.Namespace) -> None:
    from refq.interop.tosa.export import export_program
    from refq.interop.tosa.mlir import to_mlir
    from refq.interop.tosa.reference import run_reference

    t = time.perf_counter()
    ex = export_program(prog, batch=x.shape[0], keep="outputs")
    t_export = time.perf_counter() - t
    ops = sum(ex.op_counts.values())
    feed = ex.feed({prog.inputs[0]: x})
    want = run(prog, {prog.inputs[0]: x}, keep="outputs")
    out = prog.outputs[0]

    def check(outputs: list[Any], who: str) -> None:
        got = ex.assemble(outputs)[out]
        if not np.array_equal(got, want[out]):
            raise SystemExit(f"{name}: {who} logits differ from refq's")

    res = run_reference(ex.graph, feed)
    if not res.valid:
        raise SystemExit(f"{name}: reference model {res.status}: {res.reasons[:2]}")
    check(res.outputs, "reference model")
    cands = {
        "refq": lambda: run(prog, {prog.inputs[0]: x}, keep="outputs"),
        "reference model": lambda: run_reference(ex.graph, feed),
    }
    line = f"{name}: {ops} TOSA ops, export {t_export:.2f} s"
    if not a.no_iree:
        import iree.compiler as compiler
        import iree.runtime as rt

        t = time.perf_counter()
        mlir = to_mlir(ex.graph)
        line += f", tosa-opt {time.perf_counter() - t:.2f} s"
        c0 = child_cpu()
        vmfb = compiler.compile_str(mlir, target_backends=["llvm-cpu"], input_type="tosa",
                                    extra_args=["--iree-llvmcpu-target-cpu=host"])
        line += f", iree-compile {child_cpu() - c0:.1f} CPU s"
        ctx = rt.SystemContext(config=rt.Config("local-sync"))
        ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, vmfb))
        fn = ctx.modules.module["main"]

        def iree_run() -> list[Any]:
            r = fn(*feed)
            return [np.asarray(o.to_host()) for o in (r if isinstance(r, (list, tuple))
                                                       else [r])]

        check(iree_run(), "IREE")
        cands["IREE llvm-cpu"] = iree_run
    print(line)
    med = interleaved_medians(cands, a.repeat, warmup=1, clock=chosen_clock(a))
    base = med["refq"]
    for who, sec in med.items():
        print(f"  {who:16} {sec:9.4f} s  {sec / base:8.2f}x refq")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["digits", "deit_small"],
                    choices=["digits", "deit_small"])
    ap.add_argument("--depth", type=int, default=1, help="deit_small blocks (default 1)")
    ap.add_argument("--kernels", default=None, help="kernel profile of the lowering")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-iree", action="store_true", help="skip IREE")
    add_timing_arguments(ap)
    ap.set_defaults(threads=1)
    a = ap.parse_args()
    with blas_limit(a.threads):
        for m in a.models:
            prog, x = digits(a.kernels) if m == "digits" else deit_small(a.depth, a.kernels)
            bench_one(prog.name, prog, x, a)
    print(f"BLAS threads {a.threads}, clock {'process CPU' if a.cpu else 'wall'}; IREE "
          "local-sync (one thread)")


if __name__ == "__main__":
    main()
