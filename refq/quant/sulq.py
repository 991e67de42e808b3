"""I&S-ViT shift-uniform-log2 quantizer, SULQ (Zhong et al., arXiv 2311.10126;
github.com/zysxmu/IaS-ViT quant/quantizer.py ``LogSqrt2Quantizer``), for post-softmax values.

    y = logk(x + η) = ln(x + η) / ln(2)   (the source's ``logk``; x + η ≤ 0 -> code 0)
    mode="paper" (also the code's initialisation ``quantize``, which picks η):
        Δ = (y_max - y_min)/(2^b - 1),  q = clamp(round((y - y_min)/Δ), 0, 2^b - 1)
    mode="code" (the official ``forward``): Δ = (y_max - y_min)/2^b,
        q = clamp(round((y - y_min)/Δ), 0, 2^b)      (2^b + 1 codes)
    x̂ = 2^(round(q·Δ + y_min)) - η

round = half to even (torch.round); every operation in the source's order: x + η, ln, the
division by ln 2 (``torch.log(torch.tensor(2))``, a 0-dim CPU tensor), y - y_min, the
division by Δ (a tensor), round, clamp; then q·Δ + y_min, round, 2^·, - η. y_min / y_max
are the calibration extremes of y (:meth:`ShiftUniformLog2Quantizer.from_data`, computed by
:meth:`ShiftUniformLog2Quantizer.log_domain`); η is searched by refq.calib over
{0.001, ..., 1.0}. Several codes can share a level (the exponent is rounded again).

``arith`` (refq.quant.arith; both modes — both are official code paths):
- ``"float64"``: every operation in float64 (ln correctly rounded), η, y_min, y_max as given.
- ``"float32_cuda"`` / ``"float32_cpu"``: the official float32 forward. η is held as a
  float32 tensor (``torch.tensor(cur_bias)``: η32 = fl32(η)), and so are y_min, y_max
  (fl32 of the given values; exact when they come from :meth:`log_domain` in the same
  arithmetic); ln in float32 (correctly rounded); on CUDA the division by the CPU tensor
  ln 2 is the product with fl32(1/fl32(ln 2)) and Δ's division by the Python int 2^b
  (- 1) the product with fl32(1/(2^b (- 1))); on CPU both are correctly rounded quotients.

Tables (thresholds, levels) are derived from the formulas by float bisection and stored in
``to_dict``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath.arrays import IntArray
from refq.quant.arith import Arith, Fp, apply_log, check_arith, log_cr, round_real
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

Mode = Literal["paper", "code"]


@register
class ShiftUniformLog2Quantizer(TableQuantizer):
    """SULQ (module docstring). Public: ``bits``, ``eta``, ``y_min``, ``y_max``, ``mode``,
    ``arith``, ``delta`` (Δ as the arithmetic holds it), ``thresholds``, ``level_table``."""

    kind = "sulq"

    def __init__(
        self, bits: int, eta: float, y_min: float, y_max: float, mode: Mode = "paper",
        arith: Arith = "float64",
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
        self.arith: Arith = check_arith(arith, "sulq.arith")
        fp = self._fp = Fp(self.arith)
        fp.param32_ok(self.eta, "sulq.eta")
        n = (1 << self.bits) - 1 if mode == "paper" else 1 << self.bits
        self.qmax = n
        self._eta = fp.x(self.eta)
        self._ymin = fp.x(self.y_min)
        self.delta = float(fp.div_py(fp.x(self.y_max) - self._ymin, n))
        if not self.delta > 0:
            raise SpecError("sulq: y_max - y_min too small (Δ underflows)")
        self._delta = fp.x(self.delta)
        self._tables_from_formula(0, n)

    @staticmethod
    def log_domain(x: npt.ArrayLike, eta: float, arith: Arith = "float64") -> FloatArray:
        """y = logk(x + η) = ln(x + η)/ln 2 exactly as the official forward computes it in
        ``arith`` (module docstring), as float64 values (float32 values for the float32
        forms; -inf where x + η = 0, NaN below): the y whose min and max over calibration
        data are y_min and y_max."""
        fp = Fp(check_arith(arith))
        e = check_positive(eta, "sulq.eta")
        xa = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            t = fp.x(xa) + fp.x(e)
        return _ln_over_ln2(fp)(log_cr(t, "ln", fp.is32)).astype(np.float64)

    @classmethod
    def from_data(
        cls, x: npt.ArrayLike, bits: int, eta: float, mode: Mode = "paper",
        arith: Arith = "float64",
    ) -> ShiftUniformLog2Quantizer:
        """y_min, y_max = min, max of :meth:`log_domain` (x, η, arith) over calibration
        data ``x`` (the finite ones)."""
        xa = as_real(x)
        e = check_positive(eta, "sulq.eta")
        y = cls.log_domain(xa, e, arith)
        y = y[np.isfinite(y)]
        if y.size == 0:
            raise SpecError("sulq.from_data: no value with x + eta > 0")
        return cls(bits, e, float(y.min()), float(y.max()), mode, arith)

    def _code_of_y(self, y: FloatArray) -> FloatArray:
        """clamp(round((y - y_min)/Δ), 0, qmax) in the arithmetic (monotone in y)."""
        fp = self._fp
        with np.errstate(all="ignore"):
            v = (fp.x(y) - self._ymin) / self._delta
        q = round_real(v, "half_even").astype(np.float64)
        q = np.where(np.isnan(q), 0.0, q)  # x + η < 0
        return np.clip(q, 0.0, float(self.qmax))

    def _formula(self, x: FloatArray) -> IntArray:
        fp = self._fp
        with np.errstate(all="ignore"):
            t = fp.x(x) + self._eta
        return _logk(fp, t, self._code_of_y).astype(np.int64)

    def _level_formula(self, codes: IntArray) -> FloatArray:
        fp = self._fp
        e = round_real(fp.x(codes) * self._delta + self._ymin, "half_even")
        with np.errstate(over="ignore", under="ignore"):
            p = fp.x(np.exp2(e.astype(np.float64)))
        return np.asarray(p - self._eta, dtype=np.float64)

    def _params(self) -> dict[str, Any]:
        d: dict[str, Any] = {"bits": self.bits, "eta": self.eta, "y_min": self.y_min,
                             "y_max": self.y_max, "mode": self.mode}
        if self.arith != "float64":
            d["arith"] = self.arith
        return d

    @classmethod
    def from_dict(cls, d: Any) -> ShiftUniformLog2Quantizer:
        check_dict(d, cls.kind, {"bits", "eta", "y_min", "y_max", "mode"},
                   {"thresholds", "levels", "arith"})
        q = cls(d["bits"], d["eta"], d["y_min"], d["y_max"], d["mode"],
                d.get("arith", "float64"))
        q._load_tables(d)
        return q


def _ln_over_ln2(fp: Fp) -> Callable[[FloatArray], FloatArray]:
    """ln-values -> ln/ln 2 in the arithmetic: the divisor is fl(ln 2) (a 0-dim CPU tensor in
    the source: on CUDA the product with fl32(1/fl32(ln 2)))."""
    ln2 = fp.x(log_cr(np.array(2.0), "ln", fp.is32))
    if fp.arith == "float32_cuda":
        inv = np.float32(1.0) / np.float32(ln2)
        return lambda lnv: np.asarray(fp.x(lnv) * inv, dtype=np.float32)
    return lambda lnv: np.asarray(fp.x(lnv) / ln2, dtype=fp.dtype)


def _logk(fp: Fp, t: FloatArray, post: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """post(ln(t) / ln 2) in the arithmetic, ln correctly rounded (I&S-ViT's ``logk``)."""
    div = _ln_over_ln2(fp)

    def after_ln(lnv: FloatArray) -> FloatArray:
        with np.errstate(all="ignore"):
            return post(div(lnv)).astype(np.float64)

    return apply_log(np.asarray(t, dtype=np.float64), "ln", after_ln, fp.is32)


__all__ = ["ShiftUniformLog2Quantizer"]
