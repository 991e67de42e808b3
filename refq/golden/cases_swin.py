"""Swin program cases: a small Swin with seeded random weights lowered to an integer Program
(refq.program.lower_swin) and run on one seeded random image, with every constant, the
input, every intermediate and the logits stored.

``program.swin_random.minmax.w{8a8,4a4}``: image 16, patch 2, embed 8, depths (2, 2),
heads (2, 4), window 4, 5 classes — stage 0 (8 x 8 tokens, 4 windows) shifts its second
block (cyclic shift, shifted-window mask), stage 1 (4 x 4 tokens after a patch merging) has
one window equal to the resolution (no shift). ``program.swin_tiny_random.minmax.w8a8``:
swin_tiny_patch4_window7_224's full geometry, every intermediate, is an extended
case (registered and verifiable by name, not committed); the two small ones are committed
(:data:`COMMITTED`).

Weights: :func:`refq.nn.factory.random_params` with the case's seed (N(0, 0.02^2), LayerNorm
weights 1 + N(0, 0.1^2)); images: ``numpy default_rng(seed).integers(0, 256)`` as uint8,
the first ``N_CALIB`` calibrate the min-max spec (refq.calib.minmax.minmax_spec), the last
is the input.
"""

from __future__ import annotations

import sys
from functools import lru_cache, partial
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError, SpecError
from refq.golden.case import Case
from refq.golden.cases_program import program_case
from refq.golden.registry import register
from refq.nn.configs import SwinConfig
from refq.program.ir import Program
from refq.quant import QuantSpec

SMALL = SwinConfig(name="swin_random", img_size=16, patch_size=2, embed_dim=8, depths=(2, 2),
                   num_heads=(2, 4), window_size=4, num_classes=5)
SEED = 11
N_CALIB = 4
COMMITTED = True
"""The small cases are committed: about 0.7 MiB each (meta.json's program with four GELU
tables of 4096 entries is 0.3 MB, its number arrays one line each)."""


FQVIT_SPEC = "swin_random.fqvit.w8a8"
"""The stored fqvit spec of the small Swin (``refq/golden/specs/swin_random.fqvit.w8a8``,
the :meth:`refq.quant.QuantSpec.save` format): written by ``python -m
refq.golden.cases_swin --write``, checked by ``--check`` (recalibrates and compares)."""


@lru_cache(maxsize=2)
def _setup(model: str, seed: int) -> tuple[Any, npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """(the model with normalisation folded, the calibration images, the input image)."""
    from refq.nn.factory import create_model

    cfg: Any = SMALL if model == SMALL.name else model
    m = create_model(cfg, None, seed=seed).fold_normalization()
    c = m.config
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (N_CALIB + 1, c.in_chans, c.img_size, c.img_size),
                          dtype=np.int64).astype(np.uint8)
    return m, images[:N_CALIB], images[N_CALIB:]


@lru_cache(maxsize=4)
def _lowered(model: str, bits: int, seed: int,
             method: str = "minmax") -> tuple[Program, npt.NDArray[np.uint8]]:
    from refq.calib.minmax import minmax_spec
    from refq.program import lower

    m, calib, test = _setup(model, seed)
    spec = minmax_spec(m, calib, bits) if method == "minmax" else stored_fqvit_spec()
    name = f"{m.config.name}.random{seed}.{method}.w{bits}a{bits}"
    return lower(m, spec, calib, name=name), test


def stored_fqvit_spec() -> QuantSpec:
    """The stored :data:`FQVIT_SPEC` (GoldenError if missing or not fqvit W8A8)."""
    from refq.golden.specs import SPEC_DIR

    folder = SPEC_DIR / FQVIT_SPEC
    if not (folder / "spec.json").is_file():
        raise GoldenError(f"{folder}: no stored spec — run `python -m refq.golden.cases_swin "
                          "--write`")
    try:
        spec = QuantSpec.load(folder)
    except SpecError as exc:
        raise GoldenError(f"{folder}: {exc}") from None
    if (spec.method, spec.w_bits, spec.a_bits) != ("fqvit", 8, 8):
        raise GoldenError(f"{folder}: holds {spec.method} W{spec.w_bits}A{spec.a_bits}")
    return spec


def calibrate_fqvit() -> QuantSpec:
    """fqvit W8A8 (default options, seed 0) on the small Swin's calibration images."""
    from refq.methods import quantize_model

    m, calib, _ = _setup(SMALL.name, SEED)
    spec = quantize_model(m, "fqvit", 8, 8, calib, seed=0)
    spec.notes = dict(spec.notes, golden={
        "model": f"{SMALL.name}, refq.nn.factory.random_params(seed={SEED}), normalisation "
                 "folded",
        "calib_images": f"numpy default_rng({SEED}).integers(0, 256), the first {N_CALIB}",
        "seed": 0, "options": {},
        "written_by": "python -m refq.golden.cases_swin --write",
    })
    return spec


def _case(model: str, bits: int, name: str, seed: int, method: str = "minmax") -> Case:
    program, image = _lowered(model, bits, SEED, method)
    c = SMALL if model == SMALL.name else None
    geometry = (f"{model}: image 16, patch 2, embed 8, depths (2, 2), heads (2, 4), window 4, "
                "5 classes; stage 0 shifts its second block, stage 1's window is its whole "
                "resolution" if c is not None else f"{model} geometry (full)")
    spec = (f"refq.calib.minmax.minmax_spec W{bits}A{bits} on the calibration images"
            if method == "minmax" else f"refq/golden/specs/{FQVIT_SPEC} (stored fqvit W8A8 "
            "spec: FQ-ViT's Swin placement, quantized logits, log-int softmax; not "
            "recalibrated)")
    note = {
        "model": geometry + ", normalisation folded",
        "weights": f"refq.nn.factory.random_params(seed={SEED}): N(0, 0.02^2), LayerNorm "
                   "weights 1 + N(0, 0.1^2)",
        "images": f"numpy default_rng({SEED}).integers(0, 256) as uint8: the first {N_CALIB} "
                  "calibrate, the last is the input",
        "spec": spec,
        "stored": "every parameter, the input, every intermediate and the logits",
    }
    return program_case(name, seed, "program", program, {"input": image}, {"scope": note})


def _register(name: str, doc: str, model: str, bits: int, committed: bool,
              method: str = "minmax") -> None:
    register(name, "program", SEED, doc, committed)(
        partial(_case, model, bits, name, method=method))


for _bits in (8, 4):
    _register(f"program.swin_random.minmax.w{_bits}a{_bits}",
              f"small random Swin (shifted windows, patch merging, window = resolution), "
              f"min-max W{_bits}A{_bits}, 1 image, every intermediate", SMALL.name, _bits,
              COMMITTED)
_register("program.swin_tiny_random.minmax.w8a8",
          "swin_tiny_patch4_window7_224 geometry, random weights, min-max W8A8, 1 image, "
          "every intermediate (extended)", "swin_tiny_patch4_window7_224", 8, False)
_register("program.swin_random.fqvit.w8a8",
          "small random Swin, fqvit W8A8 (stored spec: quantized logits beside the "
          "relative position bias and the shifted-window mask, log-int softmax, PTF), "
          "1 image, every intermediate", SMALL.name, 8, COMMITTED, method="fqvit")


def main(argv: list[str] | None = None) -> int:
    """``python -m refq.golden.cases_swin --write | --check``: calibrate the small Swin's
    fqvit spec and store it, or compare it with the stored one (exit 1 if it differs)."""
    import argparse

    from refq.golden.specs import SPEC_DIR, compare_specs

    ap = argparse.ArgumentParser(prog="python -m refq.golden.cases_swin")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    spec = calibrate_fqvit()
    if a.write:
        spec.save(SPEC_DIR / FQVIT_SPEC, force=True)
        print(f"{FQVIT_SPEC} written")
        return 0
    state = compare_specs(spec, stored_fqvit_spec())
    print(f"{FQVIT_SPEC} {state}")
    return 1 if state == "differs" else 0


__all__ = ["COMMITTED", "FQVIT_SPEC", "N_CALIB", "SEED", "SMALL", "calibrate_fqvit", "main",
           "stored_fqvit_spec"]

if __name__ == "__main__":
    sys.exit(main())
