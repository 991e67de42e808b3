"""``refq demo``: the pipeline end to end on the bundled digits DeiT (and one row of the
bundled digits Swin), no arguments, no download.

1. For each method × bits (default: all seven recipes at W8A8, W6A6, W4A4): quantize with
   32 calibration images (refq.methods; reduced search options :data:`DEMO_OPTIONS`,
   printed: the Hessian metric and SOS at small budgets), top-1 of the fake-quant
   simulation and of the lowered integer-only Program (refq.program.lower + run) on the
   first 100 test images → one table
   (n/a where a recipe or lowering is not available), then the CPU time per phase. BLAS runs
   on 1 thread (see :mod:`refq.commands._blas`). Then one row of the bundled Swin
   (``swin_digits``, :data:`DEMO_SWIN`: same images, calibration and options) in a table
   of its own.
2. Golden vectors of one lowered program run (minmax W8A8, 2 test images): the program,
   its input and every intermediate of ``refq.program.run`` as integer .npy files with a
   sha256 manifest; then verified by re-loading the program from disk, re-running it and
   comparing every tensor exactly. They go to ``--out DIR`` (kept), else to a temporary
   folder that is removed at the end unless ``--keep`` (the path is printed either way).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from refq.errors import GoldenError

MANIFEST = "MANIFEST.json"

DEMO_OPTIONS: dict[str, dict[str, Any]] = {
    "ptq4vit": {"metric": "hessian", "n": 100, "rounds": 1, "calib_sub": 8},
    "ias": {"sos": True, "sos_iters": 10, "sos_batch": 32, "sos_lr": 4e-4},
}
"""Recipe options of the demo, passed explicitly (printed) — the gradient-based parts of
both papers at reduced budgets: PTQ4ViT with its Hessian-guided metric and ONE alternation
round over its full 100-candidate grid (the recipe default is 3 rounds); I&S-ViT with its
SOS block reconstruction at 10 Adam iterations per block and stage on mini-batches of 32
(paper: 1000 iterations of 64) with lr 4e-4 (paper 4e-5, scaled up for the 100x shorter
run) — about 10 CPU s per bit width; PTQ4ViT's searches on the first 8 calibration images
(``calib_sub``; its default, every image as the official code, costs 4x). The other
recipes run with their defaults."""

DEMO_SWIN = ("repq", 8, 8)
"""(method, w_bits, a_bits) of the demo's bundled-Swin row (``--quick``: minmax W8A8)."""

DEMO_TEST_IMAGES = 100
DEMO_CALIB = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path,
                        help="new folder for the golden vectors of step 2 (kept); default: a "
                        "temporary folder, removed at the end unless --keep")
    parser.add_argument("--keep", action="store_true",
                        help="keep the default temporary golden folder (its path is printed)")
    parser.add_argument("--methods", default="all", help="comma-separated (default: all)")
    parser.add_argument("--bits", default="W8A8,W6A6,W4A4", help="default W8A8,W6A6,W4A4")
    parser.add_argument("--test-images", type=int, default=DEMO_TEST_IMAGES,
                        help="test images evaluated (the first ones of the 400 of the split; "
                        f"default {DEMO_TEST_IMAGES})")
    parser.add_argument("--calib", type=int, default=DEMO_CALIB,
                        help=f"calibration images (default {DEMO_CALIB})")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (default 1: the bundled model's matrices are too "
                        "small for a thread pool to pay off)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced run: minmax at W8A8 and W4A4 (the Swin row: minmax "
                        "W8A8), 8 calibration and 10 test images")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def write_golden(program: Any, pixels: Any, out: Path) -> int:
    """Write ``program`` (refq.program.save), ``input.npy`` and every tensor of
    ``refq.program.run(program, {"input": pixels})`` as ``tensors/<name>.npy`` (int64,
    canonical NPY) into the new folder ``out``, with ``MANIFEST.json`` = sha256 of every
    file and the tensor → file table. Returns the number of tensors written."""
    import hashlib

    from refq.files import atomic_folder, json_bytes, npy_bytes
    from refq.program import run, save

    outs = run(program, {"input": pixels}, keep="all")
    with atomic_folder(out) as tmp:
        save(program, tmp / "program")
        (tmp / "input.npy").write_bytes(npy_bytes(pixels))
        (tmp / "tensors").mkdir()
        table: dict[str, str] = {}
        for i, (name, arr) in enumerate(sorted(outs.items())):
            rel = f"tensors/{i:04d}.npy"
            (tmp / rel).write_bytes(npy_bytes(arr))
            table[name] = rel
        files = {p.relative_to(tmp).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / MANIFEST).write_bytes(json_bytes({"tensors": table, "files": files}))
    return len(table)


def verify_golden(folder: Path) -> int:
    """Check every file's sha256 against MANIFEST.json, load the program and the input,
    re-run the program and compare every tensor exactly (values, dtype, shape). Returns the
    number of tensors compared; GoldenError naming the first mismatch."""
    import hashlib
    import json

    import numpy as np

    from refq.files import read_npy
    from refq.program import load, run

    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GoldenError(f"{folder / MANIFEST}: cannot read ({exc})") from None
    for rel, digest in manifest["files"].items():
        p = folder / rel
        if not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            raise GoldenError(f"{p}: missing or sha256 differs from {MANIFEST}")
    program = load(folder / "program")
    outs = run(program, {"input": read_npy(folder / "input.npy")}, keep="all")
    table: dict[str, str] = manifest["tensors"]
    if set(table) != set(outs):
        raise GoldenError(f"{folder}: tensor names differ from the re-run "
                          f"({sorted(set(table) ^ set(outs))[:5]})")
    for name, rel in table.items():
        try:
            np.testing.assert_array_equal(outs[name], read_npy(folder / rel), strict=True)
        except AssertionError as exc:
            raise GoldenError(f"{name} ({rel}) differs on re-run: {exc}") from None
    return len(table)


def run(args: argparse.Namespace) -> int:
    from refq.commands._blas import blas_threads

    if args.threads < 1:
        from refq.errors import SpecError

        raise SpecError(f"--threads must be >= 1, got {args.threads}")
    with blas_threads(args.threads):  # before NumPy loads: the env variables suffice
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    c0 = time.process_time()
    from refq.commands.eval import (
        Workload,
        evaluate_grid,
        format_recipe_options,
        parse_bits,
        parse_methods,
        table,
    )
    from refq.errors import SpecError
    from refq.methods import quantize_model
    from refq.nn import load_bundled
    from refq.program import lower

    if args.quick:
        methods, bits, n_test, args.calib = ["minmax"], [(8, 8), (4, 4)], 10, 8
    else:
        methods, bits = parse_methods(args.methods), parse_bits(args.bits)
        n_test = args.test_images
    if not 1 <= n_test <= 400:
        raise SpecError(f"--test-images must lie in 1..400, got {n_test}")
    if not 1 <= args.calib <= 100:
        raise SpecError(f"--calib must lie in 1..100, got {args.calib}")
    model, digits = load_bundled()
    fm = model.fold_normalization()
    calib, _ = digits.split("calib")
    test, labels = digits.split("test")
    work = Workload(fm, calib[: args.calib], test[:n_test], labels[:n_test], "bundled digits")
    opts = {m: o for m, o in DEMO_OPTIONS.items() if m in methods}
    print(f"refq demo — bundled digits DeiT ({fm.config.name}), uint8 pixels in\n"
          f"  top-1 on the first {n_test} of the {test.shape[0]} test images "
          f"(docs/results.md has all 400)\n"
          f"  calibration: the first {work.calib.shape[0]} images of the calib split "
          f"(each recipe uses them as its official code does; tsptq's searches and "
          f"ptq4vit's here the first 8)\n"
          f"  recipe options (reduced budgets): {format_recipe_options(opts)}\n"
          f"  BLAS threads: {args.threads}")
    # no programs are kept across rows: a live program keeps its execution plan (block
    # buffers, converted weights), and 21 of them held ~2 GB; the golden part re-lowers
    rows = evaluate_grid(work, methods, bits, integer=True, progress=not args.quiet,
                         options=opts)
    print(table(rows, integer=True))
    swin_rows = _swin_row(work, args.quick, args.quiet)
    phases = ("calibrate", "fake-quant", "lower", "integer")
    every = rows + swin_rows
    tot = {ph: sum(r.cpu.get(ph, 0.0) for r in every) for ph in phases}
    print("CPU seconds per method (calibrate / fake-quant eval / lower / integer eval):")
    for meth in methods:
        mine = [r for r in rows if r.method == meth]
        print(f"  {meth:8s} " + " / ".join(
            f"{sum(r.cpu.get(ph, 0.0) for r in mine):5.1f}" for ph in phases))
    for r in swin_rows:
        print(f"  {'swin':8s} " + " / ".join(f"{r.cpu.get(ph, 0.0):5.1f}" for ph in phases)
              + f"  ({r.method} {r.bits})")
    print("  total    " + " / ".join(f"{tot[ph]:5.1f}" for ph in phases))

    program = lower(fm, quantize_model(fm, "minmax", 8, 8, work.calib), work.calib)
    temp = None if args.out is not None else Path(tempfile.mkdtemp(prefix="refq-demo-"))
    out = args.out if temp is None else temp / "golden"
    try:
        n = write_golden(program, test[:2], out)
        m = verify_golden(out)
    finally:
        if temp is not None and not args.keep:
            shutil.rmtree(temp, ignore_errors=True)
    where = (f"removed {out} at the end (--out DIR or --keep keeps it)"
             if temp is not None and not args.keep else f"kept in {out}")
    print(f"golden: {n} tensors (minmax W8A8, 2 test images), verified: OK ({m} tensors "
          f"re-computed, bit-exact); {where}")
    print(f"done in {time.perf_counter() - t0:.1f} s wall, "
          f"{time.process_time() - c0:.1f} s CPU")
    return 1 if any("FAILED" in r.note for r in every) else 0


def _swin_row(work: Any, quick: bool, quiet: bool) -> list[Any]:
    """Evaluate and print the bundled Swin's row (:data:`DEMO_SWIN`; minmax W8A8 with
    ``quick``) on ``work``'s images and calibration; returns the row(s)."""
    from refq.commands.eval import Workload, evaluate_grid, table
    from refq.nn import load_bundled

    method, w, a = ("minmax", 8, 8) if quick else DEMO_SWIN
    swin, _ = load_bundled(model="swin_digits")
    sm = swin.fold_normalization()
    swork = Workload(sm, work.calib, work.images, work.labels, "bundled digits")
    opts = {method: DEMO_OPTIONS[method]} if method in DEMO_OPTIONS else {}
    print(f"bundled digits Swin ({sm.config.name}: 2 stages, shifted windows, patch merging), "
          f"{method} W{w}A{a}, same images and calibration")
    rows = evaluate_grid(swork, [method], [(w, a)], integer=True, progress=not quiet,
                         options=opts)
    print(table(rows, integer=True))
    return rows
