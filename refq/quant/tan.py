"""DopQ-ViT TanQ (Yang, Gong, Lin et al., arXiv 2408.03291) — refq's reading of the paper.

The paper gives no formula precise enough to reproduce and no code. refq defines TanQ as a
tangent companding quantizer on [0, Δ] (post-softmax values, Δ = 1 by default):

    y(x) = tan(a·(2x/Δ - 1)) / tan(a)            ∈ [-1, 1],  shape a ∈ (0, π/2)
    levels:      y_q = -1 + 2q/(n - 1),  x̂_q = Δ·(atan(y_q·tan a)/a + 1)/2,  q = 0..n-1
    thresholds:  y = -1 + (2q + 1)/(n - 1) (midpoints in y),  T_q = Δ·(atan(y·tan a)/a + 1)/2
    code = #{T_q <= x}                           (n = 2^b codes, unsigned)

with x̂_0 = 0 and x̂_{n-1} = Δ pinned exactly. y has its steepest slope at both ends, so
uniform steps in y give fine steps near 0 and near Δ: for a -> 0 TanQ tends to the uniform
quantizer; larger a moves resolution to the ends — in particular near 1, where log2 has its
coarsest step (the paper's argument: values near 1 matter; clipping them costs accuracy).
The shape a is searched by refq.calib (``tanq_shape_search``). TanQ is defined through
these explicit tables (computed once with NumPy's tan/atan, then stored in ``to_dict``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath.arrays import IntArray
from refq.quant.base import FloatArray, check_bits, check_dict, check_positive, register
from refq.quant.table import TableQuantizer

A_MAX = 1.5
"""Largest accepted shape a (tan(1.5) ≈ 14: the end steps are ~1/14 of the middle ones
relative to the uniform quantizer)."""


@register
class TanQuantizer(TableQuantizer):
    """TanQ (module docstring). Public: ``bits``, ``shape`` (a), ``scale`` (Δ),
    ``thresholds``, ``level_table``."""

    kind = "tan"

    def __init__(self, bits: int, shape: float, scale: float = 1.0) -> None:
        self.bits = check_bits(bits)
        self.shape = check_positive(shape, "tan.shape")
        if self.shape > A_MAX:
            raise SpecError(f"tan.shape: {self.shape!r} outside (0, {A_MAX}]")
        self.scale = check_positive(scale, "tan.scale")
        n = 1 << self.bits
        q = np.arange(n, dtype=np.float64)
        lv = self._inverse(-1.0 + 2.0 * q / (n - 1))
        lv[0], lv[-1] = 0.0, self.scale
        t = self._inverse(-1.0 + (2.0 * q[:-1] + 1.0) / (n - 1))
        self._cmin, self._cmax = 0, n - 1
        self._set_tables(0, n - 1, np.maximum.accumulate(t), lv)
        if bool((np.diff(lv) <= 0).any()):
            raise SpecError("tan: levels not strictly increasing (shape too small for bits)")

    def _inverse(self, y: FloatArray) -> FloatArray:
        a = self.shape
        return np.asarray(self.scale * ((np.arctan(y * math.tan(a)) / a + 1.0) / 2.0),
                          dtype=np.float64)

    def _formula(self, x: FloatArray) -> IntArray:  # pragma: no cover - defined by tables
        return self._codes_rows(x)

    def _params(self) -> dict[str, Any]:
        return {"bits": self.bits, "shape": self.shape, "scale": self.scale}

    @classmethod
    def from_dict(cls, d: Any) -> TanQuantizer:
        check_dict(d, cls.kind, {"bits", "shape", "scale"}, {"thresholds", "levels"})
        q = cls(d["bits"], d["shape"], d["scale"])
        q._load_tables(d)
        return q


__all__ = ["A_MAX", "TanQuantizer"]
