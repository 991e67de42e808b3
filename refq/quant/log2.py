"""Log2 quantizers: base 2 (FQ-ViT LIS) and base √2 (RepQ-ViT log√2).

Formula (per tensor, x ≥ 0 expected; x ≤ 0 is treated as the smallest value):

    e = round_half_even(-k · log2(x / Δ)),   k = 1 (base "2") or 2 (base "sqrt2")
    code = clamp(e, 0, 2^b - 1), except e ≥ 2^b -> the zero code (``zero="extra"``)

The code is the exponent, so codes DEcrease as x increases (``descending = True``; the
integer form reads code = code_max - #{t <= x}).

Levels (the sources' own float expressions):
- base 2 (FQ-ViT ``LIS``): Δ · 2^-q.
- base √2 (RepQ-ViT ``log_sqrt2_quant``): 2^-⌈q/2⌉ · (1 + (q mod 2)(√2 - 1)) · Δ.

Zero handling, ``zero``:
- ``"extra"`` (default, faithful to both sources): e ≥ 2^b gives value 0, which the sources
  keep as a mask beside the b-bit exponent; refq gives it code 2^b, so codes are 0..2^b
  (b bits + one zero flag in hardware).
- ``"reserve"``: the top b-bit code 2^b - 1 means zero (exponents 0..2^b-2), so the code
  fits b bits; e ≥ 2^b - 1 -> zero. Not in the sources.
- ``"none"``: clamp only (no zero level).

Official order of operations: RepQ-ViT (classification/quant/quantizer.py,
``LogSqrt2Quantizer.quantize``) computes ``round(-1 * (x/delta).log2() * 2)`` — the quotient
x/Δ (Δ a tensor), its log2, then the exact scalings; FQ-ViT (models/ptq/quantizer/log2.py,
``Log2Quantizer.quant``) ``round(-1 * x.log2())`` (Δ = 1), mask ≥ 2^b, clamp to 0..2^b-1,
dequantize 2^-q with the mask set to 0. refq evaluates the same expression with a correctly
rounded log2 (refq.quant.arith.apply_log), so the exact ties — the x whose computed
-k·log2(x/Δ) is exactly n + ½ — are decided as a correctly rounded log2 decides them.

``arith`` (refq.quant.arith): ``"float64"``, or the official float32 forward (x, Δ as
float32, x/Δ and log2 in float32; levels 2^-⌈q/2⌉·fl32(fl32(√2-1)+1)·Δ in float32, the
source's ``(q%2)*(sqrt(2)-1)+1`` with a Python-float constant). ``"float32_cuda"`` and
``"float32_cpu"`` coincide here (no division by a Python number).
Tables are derived from the formula by float bisection (refq.quant.table) and stored in
``to_dict``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from refq.errors import SpecError
from refq.intmath.arrays import IntArray
from refq.quant.arith import Arith, Fp, apply_log, check_arith, round_real
from refq.quant.base import FloatArray, check_bits, check_dict, check_positive, register
from refq.quant.table import TableQuantizer

Base = Literal["2", "sqrt2"]
Zero = Literal["extra", "reserve", "none"]


@register
class Log2Quantizer(TableQuantizer):
    """Log quantizer of base 2 or √2 (module docstring). Public: ``bits``, ``base``,
    ``scale`` (Δ), ``zero``, ``arith``, ``thresholds``, ``level_table``; ``zero_code``
    (or None)."""

    kind = "log2"
    descending = True

    def __init__(
        self, bits: int, base: Base = "2", scale: float = 1.0, zero: Zero = "extra",
        arith: Arith = "float64",
    ) -> None:
        self.bits = check_bits(bits)
        if base not in ("2", "sqrt2"):
            raise SpecError(f"log2.base: expected '2' or 'sqrt2', got {base!r}")
        if zero not in ("extra", "reserve", "none"):
            raise SpecError(f"log2.zero: expected 'extra', 'reserve' or 'none', got {zero!r}")
        self.base: Base = base
        self.zero: Zero = zero
        self.scale = check_positive(scale, "log2.scale")
        self.arith: Arith = check_arith(arith, "log2.arith")
        self._fp = Fp(self.arith)
        self._fp.param32_ok(self.scale, "log2.scale")
        n = 1 << self.bits
        self.zero_code: int | None = {"extra": n, "reserve": n - 1, "none": None}[zero]
        self._emax = n - 1 if zero != "reserve" else n - 2  # largest exponent code
        self._tables_from_formula(0, n if zero == "extra" else n - 1)

    def _exponent(self, lg: FloatArray) -> FloatArray:
        """round_half_even(-1 · log2(x/Δ) · k) from the log2 value (monotone, exact)."""
        k = 1.0 if self.base == "2" else 2.0
        with np.errstate(all="ignore"):
            return round_real((-lg * k).astype(np.float64), "half_even")

    def _formula(self, x: FloatArray) -> IntArray:
        fp = self._fp
        with np.errstate(all="ignore"):
            y = fp.x(x) / fp.x(self.scale)
        e = apply_log(y.astype(np.float64), "log2", self._exponent, fp.is32)
        e = np.where(x > 0, e, np.inf)
        code = np.clip(e, 0, self._emax)
        if self.zero_code is not None:
            code = np.where(e > self._emax, self.zero_code, code)
        return code.astype(np.int64)

    def _level_formula(self, codes: IntArray) -> FloatArray:
        fp = self._fp
        q = codes.astype(np.float64)
        if self.base == "2":
            lv = fp.x(np.exp2(-q)) * fp.x(self.scale)
        else:
            odd = fp.x(codes % 2) * fp.x(math.sqrt(2.0) - 1.0) + fp.dtype(1)
            lv = (fp.x(np.exp2(-np.ceil(q / 2.0))) * odd) * fp.x(self.scale)
        if self.zero_code is not None:
            lv = np.where(codes == self.zero_code, 0.0, lv)
        return np.asarray(lv, dtype=np.float64)

    def _params(self) -> dict[str, Any]:
        d: dict[str, Any] = {"bits": self.bits, "base": self.base, "scale": self.scale,
                             "zero": self.zero}
        if self.arith != "float64":
            d["arith"] = self.arith
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Log2Quantizer:
        check_dict(d, cls.kind, {"bits", "base", "scale", "zero"},
                   {"thresholds", "levels", "arith"})
        q = cls(d["bits"], d["base"], d["scale"], d["zero"], d.get("arith", "float64"))
        q._load_tables(d)
        return q


__all__ = ["Log2Quantizer"]
