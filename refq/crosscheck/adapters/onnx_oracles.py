"""Exact oracles of the ONNX operators the onnxruntime adapter checks (source: the ONNX
operator specifications, opset 21), in Python integers and Fractions, and the float32 bit
helpers of the adapter's cases.

``quantize_linear``    y = saturate(round_half_even(x / scale) + zp): x / scale is the EXACT
                       rational quotient of the two float32 values, rounded once, then the
                       zero point added, then saturation to int8/uint8/int16/uint16.
``dequantize_linear``  y = (x - zp) · scale, the exact product rounded once to the nearest
                       float32 (ties to even); x int8/uint8/int16/uint16/int32 (int32: zp 0).
``qlinear_matmul``     y = saturate(round_half_even(Σ(a-za)(b-zb) · sa·sb/sy) + zy) with the
                       exact product of the float32 scales (no intermediate float rounding).

:func:`u8s8_pair_saturates` models a known engine behaviour (AVX2 u8×s8 pair sums), used to
predict and avoid this machine's known disagreements.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.intmath import INT8, UINT8, IntFormat
from refq.intmath.from_real import round_fraction


# ------------------------------------------------------------------ float32 <-> bits, exact
def f32_bits(x: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """int32 bit patterns (as int64) of float32 values."""
    return np.asarray(x, np.float32).view(np.int32).astype(np.int64)


def f32_from_bits(b: npt.ArrayLike) -> npt.NDArray[np.float32]:
    return np.asarray(b, np.int64).astype(np.int32).view(np.float32)


def round_half_even(q: Fraction) -> int:
    """Nearest integer to ``q``, ties to even (exact; refq.intmath's ``round_fraction``)."""
    return round_fraction(q, "half_even")


def to_f32_exact(q: Fraction) -> np.float32:
    """``q`` rounded ONCE to the nearest float32, ties to even (overflow → ±inf)."""
    if q == 0:
        zero: np.float32 = np.float32(0)
        return zero
    sign = -1 if q < 0 else 1
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1  # now 2^e <= a < 2^(e+1)
    e = max(e, -126)  # subnormals share the exponent of the smallest normal
    m = round_half_even(a * Fraction(2) ** (23 - e))
    if m >= 2**24:
        m //= 2  # exact: m == 2^24 after a carry
        e += 1
    value = float(sign) * float("inf") if e > 127 else float(sign * m) * 2.0 ** (e - 23)
    out: np.float32 = np.float32(value)
    return out


# ------------------------------------------------------------------ oracles
def _scales(params: dict[str, Any], key: str) -> list[Fraction]:
    return [Fraction(float(f32_from_bits(b))) for b in params[key]]


def _per_axis(shape: tuple[int, ...], n: int, axis: int | None) -> npt.NDArray[np.int64]:
    """Index of each element's scale (0 for per-tensor)."""
    if n == 1 or axis is None:
        return np.zeros(shape, np.int64)
    idx = np.arange(shape[axis], dtype=np.int64).reshape(
        [-1 if d == axis % len(shape) else 1 for d in range(len(shape))]
    )
    return np.broadcast_to(idx, shape)


def quantize_linear_oracle(
    x: npt.NDArray[np.float32],
    scales: list[Fraction],
    zps: list[int],
    fmt: IntFormat,
    axis: int | None,
) -> npt.NDArray[np.int64]:
    """saturate(round_half_even(x / scale) + zp), exact rational quotient."""
    sel = _per_axis(x.shape, len(scales), axis)
    out = np.empty(x.shape, np.int64)
    for i in np.ndindex(x.shape):
        s = int(sel[i])
        v = round_half_even(Fraction(float(x[i])) / scales[s]) + zps[s]
        out[i] = min(max(v, fmt.min), fmt.max)  # saturation, in Python ints
    return out


def dequantize_linear_oracle(
    x: npt.NDArray[np.int64], scales: list[Fraction], zps: list[int], axis: int | None
) -> npt.NDArray[np.int64]:
    """float32 bits of (x - zp)·scale rounded once to float32."""
    sel = _per_axis(x.shape, len(scales), axis)
    out = np.empty(x.shape, np.float32)
    for i in np.ndindex(x.shape):
        s = int(sel[i])
        out[i] = to_f32_exact((int(x[i]) - zps[s]) * scales[s])
    return f32_bits(out)


def qlinear_matmul_oracle(
    a: npt.NDArray[np.int64],
    b: npt.NDArray[np.int64],
    za: int,
    zb: int,
    real: Fraction,
    zy: int,
    fy: IntFormat,
) -> npt.NDArray[np.int64]:
    """saturate(round_half_even(acc·real) + zy), acc exact in Python ints."""
    acc = np.matmul((a - za).astype(object), (b - zb).astype(object))
    out = np.empty(acc.shape, np.int64)
    for i in np.ndindex(acc.shape):
        v = round_half_even(int(acc[i]) * real) + zy
        out[i] = min(max(v, fy.min), fy.max)  # saturation, in Python ints
    return out


def f32_exact(q: Fraction) -> bool:
    """Whether the rational ``q`` is a normal float32 exactly (so ORT sees it unrounded)."""
    if q == 0:
        return False
    f = np.float32(float(q))
    return bool(np.isfinite(f) and abs(f) >= np.finfo(np.float32).tiny and Fraction(float(f)) == q)


def u8s8_pair_saturates(
    a: npt.NDArray[np.integer[Any]],
    b: npt.NDArray[np.integer[Any]],
    a_fmt: IntFormat,
    b_fmt: IntFormat,
) -> bool:
    """Whether an AVX2 u8×s8 kernel (vpmaddubsw) would saturate a 16-bit pair sum.

    The kernel adds the products of adjacent k pairs (k = 2j, 2j+1) of the RAW operands (zero
    points are corrected afterwards) into an int16 with saturation. ``a`` (..., M, K) uint8,
    ``b`` (..., K, N) int8. True iff some pair sum lies outside [-32768, 32767].
    """
    if not (a_fmt == UINT8 and b_fmt == INT8):
        return False
    k = a.shape[-1]
    a64 = a.astype(np.int64)
    b64 = b.astype(np.int64)
    if k % 2:
        a64 = np.concatenate([a64, np.zeros((*a64.shape[:-1], 1), np.int64)], axis=-1)
        b64 = np.concatenate([b64, np.zeros((*b64.shape[:-2], 1, b64.shape[-1]), np.int64)], -2)
    ap = a64.reshape(*a64.shape[:-1], -1, 2)  # (..., M, K/2, 2)
    bp = np.swapaxes(b64, -1, -2).reshape(*b64.shape[:-2], b64.shape[-1], -1, 2)  # (..., N, K/2, 2)
    pair = np.einsum("...mjt,...njt->...mnj", ap, bp)
    return bool(np.any((pair > 32767) | (pair < -32768)))


__all__ = [
    "dequantize_linear_oracle",
    "f32_bits",
    "f32_exact",
    "f32_from_bits",
    "qlinear_matmul_oracle",
    "quantize_linear_oracle",
    "round_half_even",
    "to_f32_exact",
    "u8s8_pair_saturates",
]
