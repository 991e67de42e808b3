"""``refq demo``: the pipeline end to end on the bundled digits DeiT, no arguments, no
download.

1. For each method × bits: quantize with a few calibration images (refq.methods), top-1 of
   the fake-quant simulation and of the lowered integer-only Program (refq.program.lower +
   run) on a subset of the test split → one table (n/a where a recipe or lowering is not
   available).
2. Golden vectors of one lowered program run (minmax W8A8, 2 test images): the program,
   its input and every intermediate of ``refq.program.run`` as integer .npy files with a
   sha256 manifest; then verified by re-loading the program from disk, re-running it and
   comparing every tensor exactly.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from refq.errors import GoldenError

MANIFEST = "MANIFEST.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path,
                        help="folder for the golden vectors (default: a new temporary folder)")
    parser.add_argument("--methods", default="all", help="comma-separated (default: all)")
    parser.add_argument("--bits", default="W8A8,W6A6,W4A4", help="default W8A8,W6A6,W4A4")
    parser.add_argument("--test-images", type=int, default=100,
                        help="test images evaluated (of the 400 of the split; default 100)")
    parser.add_argument("--calib", type=int, default=32, help="calibration images (default 32)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced run: minmax at W8A8 and W4A4, 8 calibration and 10 "
                        "test images")
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


DEMO_OPTIONS: dict[str, dict[str, Any]] = {"ptq4vit": {"n": 10, "rounds": 1}}
"""Per-method recipe options of the demo: smaller calibration searches, so it stays short."""


def run(args: argparse.Namespace) -> int:
    from refq.commands.eval import Workload, evaluate_grid, parse_bits, parse_methods, table
    from refq.errors import SpecError
    from refq.methods import quantize_model
    from refq.nn import load_bundled
    from refq.program import lower

    t0 = time.perf_counter()
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
    print(f"refq demo — bundled digits DeiT ({fm.config.name}); calibration "
          f"{work.calib.shape[0]} images, top-1 on {n_test} of {test.shape[0]} test images")
    keep: dict[tuple[str, int, int], tuple[Any, Any]] = {}
    # reduced search budgets (stated): PTQ4ViT's grid n=100 × 3 rounds costs minutes here
    print(f"reduced budgets: {DEMO_OPTIONS}")
    rows = evaluate_grid(work, methods, bits, integer=True, progress=not args.quiet, keep=keep,
                         options=DEMO_OPTIONS)
    print(table(rows, integer=True))

    _, program = keep.get(("minmax", 8, 8), (None, None))
    if program is None:
        program = lower(fm, quantize_model(fm, "minmax", 8, 8, work.calib), work.calib)
    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="refq-demo-")) / "golden"
    n = write_golden(program, test[:2], out)
    m = verify_golden(out)
    print(f"golden: {n} tensors written to {out} (minmax W8A8, 2 test images), "
          f"verified: OK ({m} tensors re-computed, bit-exact)")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 1 if any("FAILED" in r.note for r in rows) else 0
