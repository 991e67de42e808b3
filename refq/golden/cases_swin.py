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

from functools import lru_cache, partial
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.golden.case import Case
from refq.golden.cases_program import program_case
from refq.golden.registry import register
from refq.nn.configs import SwinConfig
from refq.program.ir import Program

SMALL = SwinConfig(name="swin_random", img_size=16, patch_size=2, embed_dim=8, depths=(2, 2),
                   num_heads=(2, 4), window_size=4, num_classes=5)
SEED = 11
N_CALIB = 4
COMMITTED = True
"""The small cases are committed: about 0.7 MiB each (meta.json's program with four GELU
tables of 4096 entries is 0.3 MB, its number arrays one line each)."""


@lru_cache(maxsize=4)
def _lowered(model: str, bits: int, seed: int) -> tuple[Program, npt.NDArray[np.uint8]]:
    from refq.calib.minmax import minmax_spec
    from refq.nn.factory import create_model
    from refq.program import lower

    cfg: Any = SMALL if model == SMALL.name else model
    m = create_model(cfg, None, seed=seed).fold_normalization()
    c = m.config
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (N_CALIB + 1, c.in_chans, c.img_size, c.img_size),
                          dtype=np.int64).astype(np.uint8)
    calib, test = images[:N_CALIB], images[N_CALIB:]
    spec = minmax_spec(m, calib, bits)
    name = f"{c.name}.random{seed}.minmax.w{bits}a{bits}"
    return lower(m, spec, calib, name=name), test


def _case(model: str, bits: int, name: str, seed: int) -> Case:
    program, image = _lowered(model, bits, SEED)
    c = SMALL if model == SMALL.name else None
    geometry = (f"{model}: image 16, patch 2, embed 8, depths (2, 2), heads (2, 4), window 4, "
                "5 classes; stage 0 shifts its second block, stage 1's window is its whole "
                "resolution" if c is not None else f"{model} geometry (full)")
    note = {
        "model": geometry + ", normalisation folded",
        "weights": f"refq.nn.factory.random_params(seed={SEED}): N(0, 0.02^2), LayerNorm "
                   "weights 1 + N(0, 0.1^2)",
        "images": f"numpy default_rng({SEED}).integers(0, 256) as uint8: the first {N_CALIB} "
                  "calibrate, the last is the input",
        "spec": f"refq.calib.minmax.minmax_spec W{bits}A{bits} on the calibration images",
        "stored": "every parameter, the input, every intermediate and the logits",
    }
    return program_case(name, seed, "program", program, {"input": image}, {"scope": note})


def _register(name: str, doc: str, model: str, bits: int, committed: bool) -> None:
    register(name, "program", SEED, doc, committed)(partial(_case, model, bits, name))


for _bits in (8, 4):
    _register(f"program.swin_random.minmax.w{_bits}a{_bits}",
              f"small random Swin (shifted windows, patch merging, window = resolution), "
              f"min-max W{_bits}A{_bits}, 1 image, every intermediate", SMALL.name, _bits,
              COMMITTED)
_register("program.swin_tiny_random.minmax.w8a8",
          "swin_tiny_patch4_window7_224 geometry, random weights, min-max W8A8, 1 image, "
          "every intermediate (extended)", "swin_tiny_patch4_window7_224", 8, False)
