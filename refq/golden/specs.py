"""Stored calibrated QuantSpecs: the committed inputs of the per-method block golden cases.

Calibration searches (PTQ4ViT's candidate grid, O-2SF/V-2SF, TanQ, SULQ, percentile-MSE)
are slow and rest on float arithmetic whose last bits may differ between NumPy builds, so
golden generation does NOT calibrate: it loads each method's spec from
``refq/golden/specs/<method>.w<b>a<b>/`` (``spec.json`` + ``params.npz`` when the recipe
replaces float parameters, the :meth:`refq.quant.QuantSpec.save` format, read without
pickle), lowers it with :func:`refq.program.lower` and runs the integer program.

The specs are written by ``python -m refq.golden.specs --write`` (``--check`` recalibrates
and compares exactly, the slow test does the same): each method of :data:`refq.methods.METHODS`
but ``minmax`` (whose block cases use :func:`refq.calib.minmax.minmax_spec`, calibrated at
generation time) at W8A8 and W4A4, calibrated by :func:`refq.methods.quantize_model` with
the explicit gradient-free options of :data:`OPTIONS` on the first :data:`N_CALIB` images of
the bundled digits calibration split, seed 0.

Model: the bundled digits DeiT with normalisation folded, truncated after block 0
(:func:`block0_model`, depth 1, the final norm and head kept). Block 0's tensors and
calibration data are computed upstream of block 1, so every block-0 quantizer, replacement
parameter and lowered block-0 op is the same as for the full 4-block model (tested for the
min-max spec by ``tests/golden/test_block_cases.py``); calibrating and lowering one block
instead of four makes the specs 4× smaller and generation 4× faster.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError, SpecError
from refq.nn.base import Model
from refq.quant import QuantSpec

SPEC_DIR = Path(__file__).resolve().parent / "specs"
N_CALIB = 32
"""Calibration images (the first of the bundled digits calib split) for specs and lowering."""
SEED = 0
BITS = (8, 4)
OPTIONS: dict[str, dict[str, Any]] = {
    "ptq4vit": {"metric": "cosine", "n": 100, "rounds": 3},
    "tsptq": {},
    "dopq": {"choice": "median"},
    "ias": {"sos": False},
    "repq": {},
    "fqvit": {},
}
"""Recipe options per method: explicit, cheap and gradient-free (no Hessian metric, no SOS
reconstruction)."""
METHODS: tuple[str, ...] = tuple(OPTIONS)
MODEL_NOTE = "deit_digits (bundled, normalisation folded) truncated after blocks.0 (depth 1)"


def spec_name(method: str, bits: int) -> str:
    return f"{method}.w{bits}a{bits}"


@lru_cache(maxsize=1)
def _bundled() -> tuple[Model, npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    from refq.nn import load_bundled

    model, data = load_bundled()
    calib, _ = data.split("calib")
    test, _ = data.split("test")
    return (
        model.fold_normalization(),
        np.asarray(calib[:N_CALIB], dtype=np.uint8),
        np.asarray(test, dtype=np.uint8),
    )


def calib_images() -> npt.NDArray[np.uint8]:
    """The first :data:`N_CALIB` images of the bundled calibration split (uint8 pixels)."""
    return _bundled()[1]


def golden_image() -> npt.NDArray[np.uint8]:
    """The first test image, (1, 1, 32, 32) uint8 — the input of every program/block case."""
    return _bundled()[2][:1]


def full_model() -> Model:
    """The bundled digits DeiT with its input normalisation folded (integer pixels in)."""
    return _bundled()[0]


@lru_cache(maxsize=1)
def block0_model() -> Model:
    """:func:`full_model` truncated after block 0: config ``depth=1`` (name unchanged),
    parameters of the patch embedding, tokens, block 0, final norm and head."""
    from refq.nn.configs import ViTConfig

    full = full_model()
    if not isinstance(full.config, ViTConfig):
        raise GoldenError("the bundled model is not a ViT")
    cfg = dataclasses.replace(full.config, depth=1)
    params = {k: v for k, v in full.params.items()
              if not k.startswith("blocks.") or k.startswith("blocks.0.")}
    return type(full)(cfg, params, full.dtype, pixel_input=True, source="deit_digits[:1]")


def calibrate(method: str, bits: int) -> QuantSpec:
    """Run ``method``'s recipe at W<bits>A<bits> on :func:`block0_model` (module docstring);
    the settings are recorded in ``notes["golden"]``."""
    if method not in OPTIONS:
        raise SpecError(f"golden specs: unknown method {method!r}; known: {', '.join(METHODS)}")
    from refq.methods import quantize_model

    spec = quantize_model(block0_model(), method, bits, bits, calib_images(), seed=SEED,
                          **OPTIONS[method])
    spec.notes = dict(spec.notes, golden={
        "model": MODEL_NOTE,
        "calib_images": f"bundled digits calib split, first {N_CALIB}",
        "seed": SEED,
        "options": dict(sorted(OPTIONS[method].items())),
        "written_by": "python -m refq.golden.specs --write",
    })
    return spec


def load_spec(method: str, bits: int, root: Path = SPEC_DIR) -> QuantSpec:
    """The stored spec of ``method`` at W<bits>A<bits> (GoldenError if it is missing)."""
    folder = root / spec_name(method, bits)
    if not (folder / "spec.json").is_file():
        raise GoldenError(f"{folder}: no stored spec — run `python -m refq.golden.specs --write`")
    try:
        spec = QuantSpec.load(folder)
    except SpecError as exc:
        raise GoldenError(f"{folder}: {exc}") from None
    if (spec.method, spec.w_bits, spec.a_bits) != (method, bits, bits):
        raise GoldenError(f"{folder}: holds {spec.method} W{spec.w_bits}A{spec.a_bits}")
    return spec


def write_spec(spec: QuantSpec, root: Path = SPEC_DIR) -> bool:
    """Store ``spec`` (replacing the stored one atomically) unless an equal one is stored
    already; True if written."""
    folder = root / spec_name(spec.method, spec.w_bits)
    if (folder / "spec.json").is_file():
        try:
            if QuantSpec.load(folder) == spec:
                return False
        except SpecError:
            pass
    spec.save(folder, force=True)
    return True


def _close(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rtol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rtol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= rtol * max(abs(a), abs(b))
    return bool(type(a) is type(b) and a == b)


def compare_specs(a: QuantSpec, b: QuantSpec, rtol: float = 1e-12) -> str:
    """"equal" (exactly), "close" (every float within ``rtol``, relative; everything else —
    kinds, bits, integer fields, names, options — identical) or "differs".

    A recalibration under another NumPy build is typically "close": float sums and
    reductions differ in their last bits (e.g. NumPy 1.26.4 against 2.4.6: one ulp in some
    scales, 3e-14 relative in the reparameterized parameters). Golden generation never
    sees this, as it loads the stored specs."""
    if a == b:
        return "equal"
    if not _close(a._head(), b._head(), rtol) or a.params.keys() != b.params.keys():
        return "differs"
    for k, v in a.params.items():
        w = b.params[k]
        if v.dtype != w.dtype or v.shape != w.shape or not np.allclose(v, w, rtol=rtol, atol=0):
            return "differs"
    return "close"


def main(argv: list[str] | None = None) -> int:
    """``python -m refq.golden.specs --write | --check [METHOD ...]``."""
    ap = argparse.ArgumentParser(prog="python -m refq.golden.specs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="calibrate and store the specs")
    mode.add_argument("--check", action="store_true",
                      help="recalibrate and compare with the stored specs: equal, close (float "
                      "last bits) or differs (exit 1 if any differs)")
    ap.add_argument("methods", nargs="*", default=list(METHODS))
    a = ap.parse_args(argv)
    bad = 0
    for method in a.methods:
        for bits in BITS:
            t0 = time.process_time()
            spec = calibrate(method, bits)
            dt = time.process_time() - t0
            if a.write:
                state = "written" if write_spec(spec) else "unchanged"
            else:
                state = compare_specs(spec, load_spec(method, bits))
                bad += state == "differs"
            print(f"{spec_name(method, bits):14} {state:9} ({dt:.1f} s CPU)", flush=True)
    return 1 if bad else 0


__all__ = [
    "BITS",
    "METHODS",
    "N_CALIB",
    "OPTIONS",
    "SPEC_DIR",
    "block0_model",
    "calib_images",
    "calibrate",
    "compare_specs",
    "full_model",
    "golden_image",
    "load_spec",
    "main",
    "spec_name",
    "write_spec",
]

if __name__ == "__main__":
    sys.exit(main())
