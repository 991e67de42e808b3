"""Requantization by a binary32 multiplier, as PyTorch's quantized CPU engines do it —
modelled exactly in integers.

PyTorch's ``quantized::linear`` on every CPU engine (fbgemm, x86, onednn, qnnpack) and
XNNPACK's "fp32" requantization scale the int32 accumulator by a single-precision
multiplier ``m`` and round to an integer::

    acc_f = (float) acc            (CVTDQ2PS: nearest binary32, ties to even)
    prod  = acc_f * m              (MULPS: the exact product rounded to nearest binary32,
                                    ties to even)
    q     = lrintf(prod)           (CVTPS2DQ: nearest integer, ties to even)
    out   = saturate(q + zero_point)

Source: FBGEMM ``include/fbgemm/OutputProcessing-inl.h`` (ReQuantizeOutput: "Convert int32_t
input to FP32 and multiply by FP32 scale. Both operations involve statistically unbiased
roundings"), its scalar remainder loop ``std::lrintf(raw * C_multiplier)``; QNNPACK
``requantization/fp32-sse2.c``; measured bit-exact on this machine for quantized::linear under
the fbgemm, x86, onednn and qnnpack engines (docs/backends/torch-native.md).

The same integers without a float: a binary32 value is s·2^e with an integer significand
|s| < 2^24, so each float rounding above is "round the integer to 24 significant bits, ties to
even" (:func:`round_significand`) and the final conversion is a named ``half_even`` right
shift. The multiplier is given as its significand ``m`` (0 <= m < 2^24) and a right shift
``c`` (0..63): m·2^-c is the binary32 value exactly. Exponent-range effects of binary32 play
no part: no product here exceeds 2^55 (far below the binary32 maximum), and products below
the smallest normal binary32 are below 1/2, which every rounding sends to 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import INT32, IntArray, IntFormat, as_int64, check_range, ilog2, round_shift
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare
from refq.ops.requantize import RequantParams, _channels, _offset_saturate

SIGNIFICAND_BITS = 24
"""Significant bits of an IEEE-754 binary32 value (23 stored + the implicit one)."""
MAX_SHIFT = 63
_I63 = IntFormat(63, True)  # |v| <= 2^62: the inputs round_significand accepts


def round_significand(v: Any, bits: int = SIGNIFICAND_BITS) -> IntArray:
    """Integers ``v`` rounded to ``bits`` significant binary digits, ties to even.

    For |v| < 2^bits the value is returned unchanged; otherwise the |v| - bits low bits are
    rounded off (``half_even``; the rounding is symmetric, so |v| is rounded and the sign put
    back) — IEEE-754 round-to-nearest-even of an integer to a ``bits``-bit significand, with
    no exponent limit. A carry may give 2^(n) exactly (still ``bits`` significant bits).
    Formats: ``v`` int64 with |v| < 2^62 (RangeError otherwise); the result |v'| <= 2^62.
    """
    va = check_range(as_int64(v, "v"), _I63, "v", "round_significand")
    mag = np.abs(va)
    length = ilog2(np.maximum(mag, 1)) + 1  # bit length of |v| (1 for 0)
    drop = np.maximum(length - bits, 0)
    rounded = round_shift(mag, drop, "half_even") << drop
    return np.asarray(np.where(va < 0, -rounded, rounded), dtype=np.int64)


def fp32_scale(x: Any, mantissa: Any, shift: Any) -> IntArray:
    """round_half_even(rn24(rn24(x) · m) / 2^c): an int32 ``x`` scaled by the binary32
    multiplier m·2^-c the way a CPU does it (module docstring), before the zero point.

    Formats: ``x`` int32 (checked), ``mantissa`` m in [0, 2^24), ``shift`` c in 0..63 (each a
    scalar or broadcastable per channel). Intermediates: rn24(x) <= 2^31; the exact product
    rn24(x)·m < 2^55 and its 24-bit rounding, int64; the result |q| < 2^55 (int64).
    Roundings: three, each named ``half_even`` (x to binary32, the product to binary32, the
    scaled value to an integer).
    """
    op = "fp32_scale"
    xa = check_range(x, INT32, "x", op)
    m = as_int64(mantissa, "mantissa")
    c = as_int64(shift, "shift")
    if m.size and (int(m.min()) < 0 or int(m.max()) >= 1 << SIGNIFICAND_BITS):
        raise SpecError(f"{op}: mantissa must lie in [0, 2^24), got {m.min()}..{m.max()}")
    if c.size and (int(c.min()) < 0 or int(c.max()) > MAX_SHIFT):
        raise SpecError(f"{op}: shift must lie in 0..{MAX_SHIFT}, got {c.min()}..{c.max()}")
    product = round_significand(round_significand(xa) * m)
    return round_shift(product, c, "half_even")

def requantize_fp32(x: Any, params: RequantParams, axis: int = -1) -> IntArray:
    """The ``requantize.fp32`` variant: saturate(fp32_scale(x - in_zero_point, m, c) +
    out_zero_point), per channel along ``axis``. Formats: x - in_zero_point int32 (checked);
    output ``params.out_format`` (saturated). Accuracy: |y - x·m·2^-c| <= 1/2 LSB +
    |x·m·2^-c|·2^-23 (two binary32 roundings before the final one)."""
    xa = as_int64(x, "x")
    xz = xa - np.int64(params.in_zero_point) if params.in_zero_point else xa
    m, s = _channels(xa, params, axis, "requantize")
    y = fp32_scale(check_range(xz, INT32, "x - in_zero_point", "requantize"), m, s)
    return _offset_saturate(y, xa, params.out_zero_point, params.out_format)


declare(Variant(
    "requantize", "fp32", requantize_fp32, RequantParams,
    title="binary32 multiplier, CPU float arithmetic (PyTorch quantized engines, XNNPACK)",
    accepts="x: int32 accumulator (x - in_zero_point checked against int32)",
    produces="out_format (saturated), scale S_acc·m·2^-c",
    in_formats=lambda p: (INT32,),
    out_format=lambda p: p.out_format,
    widths=(Width("x - in_zero_point", "int32"), Width("rn24(x)", "int33", "proven"),
            Width("rn24(x)·m", "int56", "proven"), Width("y + out_zero_point", "int64", "proven"),
            Width("out", "out_format", "saturated")),
    roundings=(RoundingStep("x to binary32 (24 significant bits)", "half_even"),
               RoundingStep("rn24(x)·m to binary32 (24 significant bits)", "half_even"),
               RoundingStep("rn24(rn24(x)·m) / 2^c to an integer", "half_even")),
    output="saturated",
    source="FBGEMM OutputProcessing-inl.h ReQuantizeOutput (CVTDQ2PS, MULPS, CVTPS2DQ); "
           "QNNPACK requantization/fp32-sse2.c; XNNPACK qs8 fp32 requantization",
    accuracy="<= 1/2 LSB + |x·m·2^-c|·2^-23 against x·m·2^-c",
    binds="family",
    derive=Ref("refq.params.requantize:requant_params", {"family": "fp32"}),
    golden=(Ref("refq.golden.cases_engines:engine_cases"),),
    strategy=Ref("refq.crosscheck.strategies_engines:requantize_fp32"),
    meta={"tosa.lowering": Ref("refq.interop.tosa.requant_fp32:requantize_fp32"),
          "coverage.bins": ("operand:x - in_zero_point", "tie:x to binary32",
                            "tie:rn24(x)·m to binary32", "tie:rn24(rn24(x)·m) / 2^c", "clamp:out",
                            "ends:c"),
          "coverage.model": Ref("refq.golden.coverage_models:requantize_fp32"),
          "coverage.corners": Ref("refq.golden.cases_corners:requantize_ieee")},
))

_TINY = 40
"""Once the scaled value is below 2^-16 (its exponent below -40 with a 24-bit significand),
adding an integer zero point and rounding gives the zero point itself."""


def fp32_zp_round(x: Any, mantissa: Any, shift: Any, zero_point: int) -> IntArray:
    """rne(rn24(rn24(rn24(x)·m)·2^-c + zp)): the ``fp32`` product with the zero point added
    in binary32 before the one rounding to an integer (oneDNN's output zero point, PyTorch's
    quantize_per_tensor), as an exact integer computation.

    With p = rn24(rn24(x)·m) = P'·2^(s-c) (P' its odd significand, s its trailing zeros) and
    d = c - s: d <= 0 means p is an integer (the sum, an integer, is rounded to 24 significant
    bits); 0 < d <= 40 gives
    T = P' + zp·2^d (< 2^57), rounded to 24 significant bits, then by d bits (half_even);
    d > 40 means |p| < 2^-16, so the result is zp. Formats: ``x`` int32, m < 2^24, c in
    0..63, |zp| < 2^16; the result |y| < 2^56 + 2^16 (int64; the caller saturates).
    """
    if not -(1 << 16) < int(zero_point) < (1 << 16):
        raise SpecError(f"fp32_zp_round: zero point {zero_point} outside ±2^16")
    c = as_int64(shift, "shift")
    prod = round_significand(round_significand(check_range(x, INT32, "x", "fp32_zp_round"))
                             * as_int64(mantissa, "mantissa"))
    prod, c = np.broadcast_arrays(prod, c)
    mag = np.abs(prod)
    low = mag & -mag  # the lowest set bit (0 for 0)
    s = np.where(mag > 0, ilog2(np.maximum(low, 1)), 0)
    odd = np.where(mag > 0, prod >> s, 0)  # P' = prod / 2^s, exact
    d = c - s
    zp = np.int64(zero_point)
    exact_int = (d <= 0) | (prod == 0)
    up = np.maximum(-d, 0)
    y_int = round_significand(np.where(exact_int, (odd << np.minimum(up, 62)) + zp, 0))
    mid = ~exact_int & (d <= _TINY)
    dm = np.where(mid, d, 0)
    t = round_significand(np.where(mid, odd + (zp << dm), 0))
    y_mid = round_shift(t, dm, "half_even")
    return np.asarray(np.where(exact_int, y_int, np.where(mid, y_mid, zp)), dtype=np.int64)


def requantize_fp32_zp(x: Any, params: RequantParams, axis: int = -1) -> IntArray:
    """The ``requantize.fp32_zp`` variant: saturate(fp32_zp_round(x - in_zero_point, m, c,
    out_zero_point)), per channel along ``axis``. Formats: x - in_zero_point int32 (checked),
    |out_zero_point| < 2^16; output ``params.out_format`` (saturated). Accuracy as ``fp32``
    plus one binary32 rounding of the sum (|value|·2^-24)."""
    xa = as_int64(x, "x")
    xz = xa - np.int64(params.in_zero_point) if params.in_zero_point else xa
    m, s = _channels(xa, params, axis, "requantize")
    y = fp32_zp_round(check_range(xz, INT32, "x - in_zero_point", "requantize"), m, s,
                      params.out_zero_point)
    return _offset_saturate(y, xa, 0, params.out_format)


declare(Variant(
    "requantize", "fp32_zp", requantize_fp32_zp, RequantParams,
    title="binary32 multiplier, zero point added in binary32 before rounding (oneDNN; "
          "PyTorch quantize_per_tensor)",
    accepts="x: int32 accumulator (x - in_zero_point checked against int32); "
            "|out_zero_point| < 2^16",
    produces="out_format (saturated), scale S_acc·m·2^-c",
    in_formats=lambda p: (INT32,),
    out_format=lambda p: p.out_format,
    widths=(Width("x - in_zero_point", "int32"), Width("rn24(rn24(x)·m)", "int56", "proven"),
            Width("P' + zp·2^d (d <= 40)", "int57", "proven"),
            Width("out", "out_format", "saturated")),
    roundings=(RoundingStep("x to binary32 (24 significant bits)", "half_even"),
               RoundingStep("rn24(x)·m to binary32", "half_even"),
               RoundingStep("rn24(x·m)·2^-c + zp to binary32", "half_even"),
               RoundingStep("the sum to an integer", "half_even")),
    output="saturated",
    source="oneDNN int8 inner product/matmul (output zero point applied in f32 before the "
           "conversion); FBGEMM QuantizeAvx2 LEGACY (fma(x, 1/scale, zero_point)); measured "
           "on PyTorch's onednn quantized::linear",
    accuracy="<= 1/2 LSB + |value|·2^-22 against x·m·2^-c + zp",
    binds="family",
    derive=Ref("refq.params.requantize:requant_params", {"family": "fp32_zp"}),
    golden=(Ref("refq.golden.cases_engines:engine_cases"),),
    strategy=Ref("refq.crosscheck.strategies_engines:requantize_fp32_zp"),
    meta={"coverage.bins": ("operand:x - in_zero_point", "tie:x to binary32",
                            "tie:rn24(x)·m to binary32", "clamp:out", "ends:c"),
          "coverage.model": Ref("refq.golden.coverage_models:requantize_fp32"),
          "coverage.corners": Ref("refq.golden.cases_corners:requantize_ieee")},
))

__all__ = ["MAX_SHIFT", "SIGNIFICAND_BITS", "fp32_scale", "fp32_zp_round", "requantize_fp32",
           "requantize_fp32_zp", "round_significand"]
