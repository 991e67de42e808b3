"""I&S-ViT shift-uniform-log2 quantizer, SULQ (Zhong et al., arXiv 2311.10126;
github.com/zysxmu/IaS-ViT), for post-softmax values.

    y = log2(x + η)                      (η > 0: the shift bias; x + η ≤ 0 -> code 0)
    mode="paper" (also the code's initialisation): Δ = (y_max - y_min)/(2^b - 1),
        q = clamp(round((y - y_min)/Δ), 0, 2^b - 1)
    mode="code" (the official forward pass): Δ = (y_max - y_min)/2^b,
        q = clamp(round((y - y_min)/Δ), 0, 2^b)      (2^b + 1 codes)
    x̂ = 2^(round(q·Δ + y_min)) - η

round = half to even (torch.round); y_min / y_max are the calibration extremes of y
(:meth:`ShiftUniformLog2Quantizer.from_data`); η is searched by refq.calib over
{0.001, ..., 1.0}. Several codes can share a level (the exponent is rounded again).
Tables (thresholds, levels) are derived from the formulas by float bisection (this
machine's log2 pinned into the tables) and stored in ``to_dict``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath.arrays import IntArray
from refq.quant.base import (
    FloatArray,
    as_real,
    check_bits,
    check_dict,
    check_float,
    check_positive,
    register,
)
from refq.quant.table import TableQuantizer
from refq.quant.uniform import round_real

Mode = Literal["paper", "code"]


@register
class ShiftUniformLog2Quantizer(TableQuantizer):
    """SULQ (module docstring). Public: ``bits``, ``eta``, ``y_min``, ``y_max``, ``mode``,
    ``delta``, ``thresholds``, ``level_table``."""

    kind = "sulq"

    def __init__(
        self, bits: int, eta: float, y_min: float, y_max: float, mode: Mode = "paper"
    ) -> None:
        self.bits = check_bits(bits)
        self.eta = check_positive(eta, "sulq.eta")
        self.y_min = check_float(y_min, "sulq.y_min")
        self.y_max = check_float(y_max, "sulq.y_max")
        if not self.y_max > self.y_min:
            raise SpecError(f"sulq: y_max {self.y_max!r} must exceed y_min {self.y_min!r}")
        if mode not in ("paper", "code"):
            raise SpecError(f"sulq.mode: expected 'paper' or 'code', got {mode!r}")
        self.mode: Mode = mode
        n = (1 << self.bits) - 1 if mode == "paper" else 1 << self.bits
        self.qmax = n
        self.delta = (self.y_max - self.y_min) / n
        if not self.delta > 0:
            raise SpecError("sulq: y_max - y_min too small (Δ underflows)")
        self._tables_from_formula(0, n)

    @classmethod
    def from_data(
        cls, x: npt.ArrayLike, bits: int, eta: float, mode: Mode = "paper"
    ) -> ShiftUniformLog2Quantizer:
        """y_min, y_max = min, max of log2(x + η) over calibration data ``x``."""
        xa = as_real(x)
        e = check_positive(eta, "sulq.eta")
        with np.errstate(all="ignore"):
            y = np.log2(xa + e)
        y = y[np.isfinite(y)]
        if y.size == 0:
            raise SpecError("sulq.from_data: no value with x + eta > 0")
        return cls(bits, e, float(y.min()), float(y.max()), mode)

    def _formula(self, x: FloatArray) -> IntArray:
        y = np.log2(x + self.eta)
        q = round_real((y - self.y_min) / self.delta, "half_even")
        q = np.where(np.isnan(q), 0.0, q)  # x + η < 0
        return np.clip(q, 0.0, float(self.qmax)).astype(np.int64)

    def _level_formula(self, codes: IntArray) -> FloatArray:
        e = round_real(codes.astype(np.float64) * self.delta + self.y_min, "half_even")
        return np.asarray(np.exp2(e) - self.eta, dtype=np.float64)

    def _params(self) -> dict[str, Any]:
        return {"bits": self.bits, "eta": self.eta, "y_min": self.y_min, "y_max": self.y_max,
                "mode": self.mode}

    @classmethod
    def from_dict(cls, d: Any) -> ShiftUniformLog2Quantizer:
        check_dict(d, cls.kind, {"bits", "eta", "y_min", "y_max", "mode"},
                   {"thresholds", "levels"})
        q = cls(d["bits"], d["eta"], d["y_min"], d["y_max"], d["mode"])
        q._load_tables(d)
        return q


__all__ = ["ShiftUniformLog2Quantizer"]
