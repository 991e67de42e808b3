"""gemmlowp / TFLite fixed-point primitives, bit-exact to the C++ reference semantics.

Sources: gemmlowp ``fixedpoint/fixedpoint.h`` (SaturatingRoundingDoublingHighMul,
RoundingDivideByPOT, SaturatingRoundingMultiplyByPOT, RoundingHalfSum,
one_over_one_plus_x_for_x_in_0_1) and TFLite ``kernels/internal/common.h``
(MultiplyByQuantizedMultiplier in its two *schemes*: the default double-rounding build and
the ``TFLITE_SINGLE_ROUNDING`` build). All operands are int32 values carried in int64; every
function checks its inputs against the C++ types and raises RangeError where the C++ code
would overflow (undefined behaviour) instead of wrapping.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np

from refq.errors import SpecError
from refq.intmath.arrays import IntArray, as_int64
from refq.intmath.formats import INT32, check_range

_I32_MIN = -(2**31)
_I32_MAX = 2**31 - 1


def saturating_rounding_doubling_high_mul(a: Any, b: Any) -> IntArray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 ``a``, ``b`` → int32.

    Computes round(a·b / 2^31) with ties toward +∞ (``half_up``: +1/2 → 1, -1/2 → 0): the
    62-bit product ``ab`` (int64) plus a nudge of 2^30 (ab >= 0) or 1 - 2^30 (ab < 0), then a
    division by 2^31 that truncates toward zero — for a negative tie (ab + 1 - 2^30) / 2^31
    lies just above the lower integer and truncates up, so gemmlowp's code, which this
    follows, is not "ties away from zero" as its name is often read. The single overflow
    case a = b = -2^31 returns 2^31 - 1.
    Intermediates: ab + nudge within ±(2^62 + 2^30), int64.
    """
    aa = check_range(a, INT32, "a", "saturating_rounding_doubling_high_mul")
    ba = check_range(b, INT32, "b", "saturating_rounding_doubling_high_mul")
    aa, ba = np.broadcast_arrays(aa, ba)
    overflow = (aa == _I32_MIN) & (ba == _I32_MIN)
    ab = aa * ba
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    s = ab + nudge
    # C++ integer division by 2^31 truncates toward zero.
    q = s >> 31
    q = q + ((s < 0) & ((s & np.int64((1 << 31) - 1)) != 0))
    return np.asarray(np.where(overflow, np.int64(_I32_MAX), q), dtype=np.int64)


def rounding_divide_by_pot(x: Any, exponent: Any) -> IntArray:
    """gemmlowp RoundingDivideByPOT: int32 ``x`` / 2^exponent, ties away from zero.

    ``exponent`` in 0..31. mask = 2^e - 1, remainder = x & mask, threshold = (mask >> 1) +
    (x < 0); result = (x >> e) + (remainder > threshold). Intermediates fit int32.
    """
    xa = check_range(x, INT32, "x", "rounding_divide_by_pot")
    ea = as_int64(exponent, "exponent")
    if ea.size and (int(ea.min()) < 0 or int(ea.max()) > 31):
        raise SpecError(
            f"rounding_divide_by_pot: exponent must lie in 0..31, got "
            f"{int(ea.min()) if int(ea.min()) < 0 else int(ea.max())}"
        )
    xa, ea = np.broadcast_arrays(xa, ea)
    mask = (np.int64(1) << ea) - np.int64(1)
    remainder = xa & mask
    threshold = (mask >> 1) + (xa < 0)
    return np.asarray((xa >> ea) + (remainder > threshold), dtype=np.int64)


def check_multiplier(multiplier: Any, name: str = "multiplier") -> IntArray:
    """Require a TFLite quantized multiplier: 0 or within [2^30, 2^31)."""
    m = as_int64(multiplier, name)
    bad = (m != 0) & ((m < (1 << 30)) | (m > _I32_MAX))
    if bool(bad.any()):
        v = int(m[np.nonzero(bad)][0]) if m.ndim else int(m)
        raise SpecError(f"{name}: {v} is neither 0 nor within [2^30, 2^31)")
    return m


Scheme = Literal["double", "single"]
"""The two TFLite MultiplyByQuantizedMultiplier builds: ``double`` (the default: two
roundings) and ``single`` (``TFLITE_SINGLE_ROUNDING``: one). A *scheme*, not a rounding: the
six named roundings are :data:`refq.intmath.rounding.ROUNDINGS`."""
SCHEMES: tuple[Scheme, ...] = ("double", "single")


def check_scheme(scheme: Any, name: str = "scheme") -> Scheme:
    if scheme not in SCHEMES:
        raise SpecError(f"{name} must be 'double' or 'single', got {scheme!r}")
    out: Scheme = scheme
    return out


def multiply_by_quantized_multiplier(
    x: Any,
    multiplier: Any,
    shift: Any,
    scheme: Scheme = "double",
    *,
    rounding: Scheme | None = None,
) -> IntArray:
    """TFLite MultiplyByQuantizedMultiplier: x · multiplier · 2^(shift - 31), int32 → int32.

    ``multiplier`` is 0 or in [2^30, 2^31) (Q0.31 mantissa of the real multiplier) and
    ``shift`` its power-of-two exponent, both as returned by :func:`quantize_multiplier`.

    ``scheme="double"`` (the default TFLite build): ``shift`` in [-31, 30];
    RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x · 2^max(shift, 0), M),
    max(-shift, 0)) — two roundings: SRDHM's ties go toward +∞, RoundingDivideByPOT's away
    from zero. ``x · 2^max(shift, 0)`` must fit
    int32 (it is an int32 multiply in C++), else RangeError.

    ``scheme="single"`` (``TFLITE_SINGLE_ROUNDING``): ``shift`` in [-31, 30];
    (x · M + 2^(30 - shift)) >> (31 - shift) in int64 — one rounding, ties toward +∞. The
    result must fit int32 (a DCHECK in C++), else RangeError.

    ``rounding=`` is the former name of ``scheme`` (deprecated).
    """
    op = "multiply_by_quantized_multiplier"
    if rounding is not None:
        warnings.warn(f"{op}: 'rounding' is now 'scheme' (double/single is a scheme, not one "
                      "of the six roundings)", DeprecationWarning, stacklevel=2)
        scheme = rounding
    scheme = check_scheme(scheme, f"{op}: scheme")
    xa = check_range(x, INT32, "x", op)
    m = check_multiplier(multiplier)
    s = as_int64(shift, "shift")
    if s.size and (int(s.min()) < -31 or int(s.max()) > 30):
        bad = int(s.min()) if int(s.min()) < -31 else int(s.max())
        raise SpecError(f"{op}: shift {bad} outside the TFLite range [-31, 30]")
    xa, m, s = np.broadcast_arrays(xa, m, s)
    if scheme == "double":
        left = np.maximum(s, 0)
        right = np.maximum(-s, 0)
        scaled = check_range(xa << left, INT32, "x * 2^left_shift", op)
        return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, m), right)
    total = np.int64(31) - s
    nudge = np.int64(1) << (total - 1)
    out = (xa * m + nudge) >> total
    return check_range(out, INT32, "result", op)


def saturating_rounding_multiply_by_pot(x: Any, exponent: int) -> IntArray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent >= 0 on int32 ``x``:
    x · 2^exponent, saturated to int32 (no rounding happens for a left shift)."""
    if not 0 <= int(exponent) <= 31:
        raise SpecError(f"saturating_rounding_multiply_by_pot: exponent {exponent} not in 0..31")
    xa = check_range(x, INT32, "x", "saturating_rounding_multiply_by_pot")
    e = int(exponent)
    thr = (1 << (31 - e)) - 1
    out: IntArray = np.asarray(
        np.where(xa > thr, np.int64(_I32_MAX),
                 np.where(xa < -thr, np.int64(_I32_MIN), xa << np.int64(e))),
        dtype=np.int64,
    )
    return out


def rounding_half_sum(a: Any, b: Any) -> IntArray:
    """gemmlowp RoundingHalfSum on int32 ``a``, ``b``: (a + b + sgn(a + b)) / 2 with C++'s
    truncating division (the sum in int64): round(a + b)/2, ties away from zero."""
    aa = check_range(a, INT32, "a", "rounding_half_sum")
    ba = check_range(b, INT32, "b", "rounding_half_sum")
    s = aa + ba
    t = s + np.where(s >= 0, np.int64(1), np.int64(-1))
    q = t >> 1
    out: IntArray = np.asarray(q + ((t < 0) & ((t & np.int64(1)) != 0)), dtype=np.int64)
    return out


Q2_29_48_OVER_17 = 1515870810
"""48/17 in Q2.29 (gemmlowp ``constant_48_over_17``, the Newton start)."""
Q2_29_NEG_32_OVER_17 = -1010580540
"""-32/17 in Q2.29 (gemmlowp ``constant_neg_32_over_17``)."""


def one_over_one_plus_x_for_x_in_0_1(a: Any) -> IntArray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 ``a`` in [0, 1) → 1/(1 + a) in
    Q0.31. half_denominator = RoundingHalfSum(a, 1) (Q0.31); x = 48/17 - 32/17·half_den
    (Q2.29); three Newton steps x ← x + x·(1 - half_den·x)·4 (Q2.29, saturating ·4);
    result x·2 saturated to Q0.31. Every product is SaturatingRoundingDoublingHighMul."""
    half_den = rounding_half_sum(a, _I32_MAX)
    x = np.int64(Q2_29_48_OVER_17) + saturating_rounding_doubling_high_mul(
        half_den, Q2_29_NEG_32_OVER_17)
    one_q2_29 = np.int64(1 << 29)
    for _ in range(3):
        t = one_q2_29 - saturating_rounding_doubling_high_mul(half_den, x)
        x = x + saturating_rounding_multiply_by_pot(saturating_rounding_doubling_high_mul(x, t), 2)
    return saturating_rounding_multiply_by_pot(x, 1)


__all__ = [
    "Q2_29_48_OVER_17",
    "Q2_29_NEG_32_OVER_17",
    "SCHEMES",
    "Scheme",
    "check_multiplier",
    "check_scheme",
    "multiply_by_quantized_multiplier",
    "one_over_one_plus_x_for_x_in_0_1",
    "rounding_divide_by_pot",
    "rounding_half_sum",
    "saturating_rounding_doubling_high_mul",
    "saturating_rounding_multiply_by_pot",
]
