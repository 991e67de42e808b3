"""DopQ-ViT TanQ shape search (refq's reading of the paper; see refq.quant.tan).

TanQ's shape a ∈ (0, 1.5] sets how much resolution moves to both ends of [0, Δ]. refq
searches a over ``SHAPES`` = 0.05, 0.10, ..., 1.50 (30 values) with Δ fixed (1.0 for
post-softmax values, the range's upper bound, so values near 1 keep their resolution),
lowest MSE wins, first (smallest a) on ties; shapes for which the quantizer cannot be
built at this bit-width (levels not strictly increasing) are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from refq.calib._common import as_float, check_bits
from refq.calib.grid import grid_search
from refq.calib.metrics import Metric
from refq.quant.tan import TanQuantizer

SHAPES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 31))


def tanq_shape_search(
    x: npt.ArrayLike,
    bits: int,
    *,
    shapes: Sequence[float] = SHAPES,
    scale: float = 1.0,
    metric: str | Metric = "mse",
) -> tuple[TanQuantizer, dict[str, Any]]:
    """Best TanQuantizer(bits, a, scale) over ``shapes``. Record: ``shape``, ``scale``,
    ``index``, ``loss``, ``losses`` (None for skipped shapes), ``shapes``."""
    xa = as_float(x)
    b = check_bits(bits)

    def make(a: float) -> TanQuantizer:
        return TanQuantizer(b, a, scale)

    res = grid_search(xa, make, [float(a) for a in shapes], metric=metric)
    rec = res.record()
    del rec["param"]
    rec.update(shape=res.param, scale=float(scale), shapes=[float(a) for a in shapes])
    return res.best, rec


__all__ = ["SHAPES", "tanq_shape_search"]
