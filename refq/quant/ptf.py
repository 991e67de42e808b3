"""FQ-ViT Power-of-Two Factor quantizer (Lin et al., IJCAI 2022;
github.com/megvii-research/FQ-ViT) for LayerNorm inputs.

Layer-wise s8 = (max - min)/(2^b - 1) (FQ-ViT guards it with max(·, 1e-8)); per channel
c a factor α_c ∈ {0..K} (K = ``max_alpha``, 3 in FQ-ViT); channel scale
scale_c = (s8 / 2^K)·2^α_c (= (s8/8)·2^α_c for K = 3), ONE shared zero point
z = clamp(round(-min/s8), 0, 2^b - 1), unsigned b-bit codes:

    mode="paper" (the paper's Quant(X) = clip(⌊X/s⌉ + zp, 0, 2^b-1); refq's default):
        code = clamp(round_half_even(x_c / scale_c) + z, 0, 2^b - 1)
    mode="code" (FQ-ViT's forward, models/ptq/quantizer/uniform.py ``quant``: the zero point
    is added BEFORE rounding, ``(x / scale + zero_point).round().clamp(...)``):
        code = clamp(round_half_even(fl(x_c / scale_c + z)), 0, 2^b - 1)
    x̂ = (code - z)·scale_c in both.

The two modes differ on ties: where x/scale is exactly k + ½ and z is odd, and where the
sum x/scale + z rounds onto or off a tie. ``arith`` (refq.quant.arith) evaluates either in
float64 or in the official torch float32 (scale_c = fl32(s8/2^K)·2^α_c, exactly FQ-ViT's
scale1·2^α in float32).

Integer form: the shared zero point and the power-of-two factors let an integer LayerNorm
take x_int_c << α_c (FQ-ViT's point); refq's generic per-channel thresholds also apply.
The α search itself is refq.calib's ``ptf_search``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath.rounding import Rounding
from refq.quant.arith import Arith, round_real
from refq.quant.base import (
    check_bits,
    check_dict,
    check_float,
    check_int,
    check_positive,
    register,
)
from refq.quant.uniform import UniformQuantizer

Mode = Literal["paper", "code"]


@register
class PowerOfTwoFactorQuantizer(UniformQuantizer):
    """PTF (module docstring). Public: ``base_scale`` (s8/2^K), ``alpha`` (int64 per
    channel), ``max_alpha``, ``mode``, plus UniformQuantizer's (``scale``, ``zero_point``,
    ``axis``, ``zp_in_round`` (= mode "code"), ``arith``)."""

    kind = "ptf"

    def __init__(
        self,
        base_scale: float,
        bits: int,
        alpha: npt.ArrayLike,
        zero_point: int = 0,
        *,
        axis: int = -1,
        max_alpha: int = 3,
        rounding: Rounding = "half_even",
        mode: Mode = "paper",
        arith: Arith = "float64",
    ) -> None:
        if mode not in ("paper", "code"):
            raise SpecError(f"ptf.mode: expected 'paper' or 'code', got {mode!r}")
        self.mode: Mode = mode
        self.base_scale = check_positive(base_scale, "ptf.base_scale")
        self.max_alpha = check_int(max_alpha, "ptf.max_alpha", 0, 8)
        a = np.asarray(alpha)
        if a.ndim != 1 or a.size == 0 or a.dtype.kind not in "iu":
            raise SpecError("ptf.alpha: expected a non-empty 1-D integer array")
        a = a.astype(np.int64)
        if int(a.min()) < 0 or int(a.max()) > self.max_alpha:
            raise SpecError(f"ptf.alpha: factors must lie in 0..{self.max_alpha}")
        self.alpha = a
        zp = check_int(zero_point, "ptf.zero_point", 0, (1 << check_bits(bits)) - 1)
        scale = self.base_scale * np.exp2(a.astype(np.float64))
        super().__init__(scale, bits, np.full(a.shape, zp, dtype=np.int64), signed=False,
                         axis=check_int(axis, "ptf.axis", -32, 31), rounding=rounding,
                         zp_in_round=mode == "code", arith=arith)

    @classmethod
    def from_layer_range(
        cls,
        lo: float,
        hi: float,
        bits: int,
        alpha: npt.ArrayLike,
        *,
        axis: int = -1,
        max_alpha: int = 3,
        mode: Mode = "paper",
        arith: Arith = "float64",
    ) -> PowerOfTwoFactorQuantizer:
        """FQ-ViT's parameters from the layer-wise [lo, hi] and chosen factors (computed in
        float64; ``mode`` and ``arith`` are passed on)."""
        b = check_bits(bits)
        lo_f, hi_f = check_float(lo, "ptf.lo"), check_float(hi, "ptf.hi")
        if lo_f > hi_f:
            raise SpecError("ptf: lo > hi")
        k = check_int(max_alpha, "ptf.max_alpha", 0, 8)
        s8 = max((hi_f - lo_f) / (2.0**b - 1), 1e-8)
        z = int(np.clip(round_real(np.array(-lo_f / s8), "half_even"), 0, 2**b - 1))
        return cls(s8 / 2**k, b, alpha, z, axis=axis, max_alpha=k, mode=mode, arith=arith)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "version": 1, "bits": self.bits, "base_scale": self.base_scale,
            "alpha": self.alpha.tolist(), "zero_point": int(self.zero_point[0]),
            "axis": self.axis, "max_alpha": self.max_alpha, "rounding": self.rounding,
            **({"mode": "code"} if self.mode == "code" else {}),
            **({"arith": self.arith} if self.arith != "float64" else {}),
        }

    @classmethod
    def from_dict(cls, d: Any) -> PowerOfTwoFactorQuantizer:
        check_dict(d, cls.kind, {"bits", "base_scale", "alpha", "zero_point", "axis",
                                 "max_alpha", "rounding"}, {"mode", "arith"})
        return cls(d["base_scale"], d["bits"], d["alpha"], d["zero_point"], axis=d["axis"],
                   max_alpha=d["max_alpha"], rounding=d["rounding"],
                   mode=d.get("mode", "paper"), arith=d.get("arith", "float64"))


__all__ = ["PowerOfTwoFactorQuantizer"]
