"""FQ-ViT's log-int softmax (LIS) as its quantized forward computes it, in float
(Lin et al., IJCAI 2022; megvii-research/FQ-ViT ``QIntSoftmax`` with ``log_i_softmax``).

Input: the attention logits after their uniform quantizer (``qact_attn1``), and that
quantizer's scale S. Along the last axis, in float64 (``arith``: float32 for the
official float32 run), the formula of the official forward:

    t = x / S;  t = t - max(t)                        (integers up to rounding of x/S)
    x0 = ⌊-0.6931 / S⌋,  t = max(t, 30·x0)            I-BERT's i-exp, n = 30
    q = ⌊t / x0⌋,  r = t - x0·q
    poly = r·(r + ⌊(b/a)/S⌋) + ⌊(c/a)/S²⌋             a, b, c = 0.35815147, 0.96963238, 1
    e = max(⌊poly · 2^(30 - q)⌋, 0),  Σ = sum(e)
    k = log_round(round_half_even(Σ / e)),
    log_round(v) = ⌊log2 v⌋ + [v - 2^⌊log2 v⌋ ≥ 2^(⌊log2 v⌋-1)]
    code = clamp(k, 0, 2^b - 1), value 2^-code; k ≥ 2^b (or e = 0) → value 0

b = 4 (uint4) in FQ-ViT. The codes are those of ``Log2Quantizer(b, "2", 1.0, "extra")``
(exponent codes 0..2^b-1, the zero flag 2^b), which is how a QuantSpec records the LIS
output; refq.ops' ``softmax.lis`` is the exact-integer form of the same algorithm (equal
whenever x/S is an exact integer and the float64 steps are exact, i.e. away from the
float rounding of x/S).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, check_bits
from refq.calib.quantile import Arith, check_arith
from refq.errors import SpecError
from refq.quant.arith import log_cr

IEXP_X0 = -0.6931
"""I-BERT's -ln 2 (as the sources write it)."""
IEXP_N = 30
IEXP_COEF = (0.35815147, 0.96963238, 1.0)
"""a, b, c of the i-exp polynomial a·(r + b/a)·r + c/a (times a)."""


def _log_round(v: FloatArray) -> FloatArray:
    """round(log2 v) as FQ-ViT forms it: floor(log2 v) plus one where v - 2^floor ≥
    2^(floor-1); log2 correctly rounded in v's precision (not NumPy's SIMD log2)."""
    big = np.floor(log_cr(v, "log2", v.dtype == np.float32)).astype(v.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        extra = (v - np.exp2(big)) >= np.exp2(big - 1)
    return np.where(extra, big + 1, big)


def lis_codes(x: npt.ArrayLike, scale: float, bits: int = 4,
              arith: Arith = "float64") -> npt.NDArray[np.int64]:
    """LIS codes (module docstring) of the quantized logits ``x`` with input scale ``scale``:
    int64, 0..2^bits-1 for the value 2^-code, 2^bits for the value 0."""
    b = check_bits(bits)
    dt: Any = np.float64 if check_arith(arith) == "float64" else np.float32
    if not scale > 0:
        raise SpecError(f"lis: the logits scale must be > 0, got {scale!r}")
    s = dt(scale)
    a_, b_, c_ = IEXP_COEF
    t = np.asarray(x, dtype=dt) / s
    t = t - t.max(axis=-1, keepdims=True)
    x0 = np.floor(dt(IEXP_X0) / s)
    if not x0 < 0:
        raise SpecError(f"lis: logits scale {scale!r} too large (i-exp needs ⌊-0.6931/S⌋ < 0)")
    t = np.maximum(t, dt(IEXP_N) * x0)
    q = np.floor(t / x0)
    r = t - x0 * q
    b_int = np.floor(dt(b_ / a_) / s)
    c_int = np.floor(dt(c_ / a_) / s**2)
    poly = r * (r + b_int) + c_int
    e = np.maximum(np.floor(poly * np.exp2(dt(IEXP_N) - q)), dt(0))
    total = e.sum(axis=-1, keepdims=True, dtype=dt)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.rint(total / e)
    k = _log_round(ratio)
    top = 1 << b
    zero = ~(k < top)  # k ≥ 2^b, or NaN/inf where e = 0
    out: npt.NDArray[np.int64] = np.where(zero, top, np.clip(k, 0, top - 1)).astype(np.int64)
    return out


def log_int_softmax(x: npt.ArrayLike, scale: float, bits: int = 4,
                    arith: Arith = "float64") -> FloatArray:
    """The dequantized LIS output 2^-code (0 for the zero code) of :func:`lis_codes`."""
    c = lis_codes(x, scale, bits, arith)
    out: FloatArray = np.where(c == (1 << bits), 0.0, np.exp2(-c.astype(np.float64)))
    return out


__all__ = ["IEXP_COEF", "IEXP_N", "IEXP_X0", "lis_codes", "log_int_softmax"]
