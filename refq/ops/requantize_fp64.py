"""Requantization by a binary64 scale with round-half-away-from-zero — TFLite's reference
FULLY_CONNECTED as built in LiteRT — modelled exactly in integers.

LiteRT's reference fully-connected kernels with float scales
(``reference_integer_ops::FullyConnected(..., float input_scale, float output_scale,
float filter_scale)`` and ``FullyConnectedPerChannel`` likewise) requantize the int32
accumulator without a fixed-point multiplier::

    scale = double(s_in) · double(s_w) / double(s_out)        (binary64)
    out   = saturate((int32) round(double(acc) · scale) + zero_point)

``std::round`` rounds half away from zero; ``double(acc) · scale`` is the exact product rounded
to the nearest binary64 (ties to even). The scale is given here as its significand ``m``
(0 <= m < 2^53) and a right shift ``c`` (0..126): scale = m·2^-c exactly. In integers: the
product |acc|·m (< 2^84, two int64 limbs) is rounded to 53 significant bits (``half_even``),
then the value is rounded to an integer (``half_away``). As in :mod:`refq.ops.requantize_fp32`,
binary64 exponent-range effects play no part (no product leaves the normal range).

Source: LiteRT ``tflite/kernels/internal/reference/integer_ops/fully_connected.h``; measured
bit-exact against LiteRT 2.3.0's BUILTIN_REF int8 FULLY_CONNECTED (docs/backends/litert.md),
where it differs from MultiplyByQuantizedMultiplier (``single`` / ``double``) on ties and near
ties: the scale is not rounded to a 31-bit multiplier first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import INT32, IntArray, as_int64, check_range, ilog2, round_shift
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare
from refq.ops.requantize import RequantParams, _channels, _offset_saturate

SIGNIFICAND_BITS = 53
"""Significant bits of an IEEE-754 binary64 value."""
MAX_SHIFT = 126
_LIMB = 27  # the significand's low limb: |acc|·(m >> 27) < 2^57, |acc|·(m & (2^27-1)) < 2^58


def _bit_length(v: IntArray) -> IntArray:
    """Bit length of non-negative int64 values (0 for 0)."""
    return np.asarray(np.where(v > 0, ilog2(np.maximum(v, 1)) + 1, 0), dtype=np.int64)


def _round53(hi: IntArray, lo: IntArray) -> tuple[IntArray, IntArray]:
    """The value hi·2^27 + lo (hi < 2^58, 0 <= lo < 2^27) rounded to 53 significant bits,
    ties to even, as (q, t): q·2^t with q < 2^53 (q may be 2^53 after a carry)."""
    length = np.where(hi > 0, _bit_length(hi) + _LIMB, _bit_length(lo))
    t = np.maximum(length - SIGNIFICAND_BITS, 0)
    # t <= 27: q = hi·2^(27-t) + (lo >> t), remainder lo mod 2^t (all of it in lo)
    small = t <= _LIMB
    ts = np.where(small, t, 0)
    q_small = (hi << (_LIMB - ts)) + (lo >> ts)
    rem_small = lo & ((np.int64(1) << ts) - 1)
    # t > 27: q = hi >> (t-27); remainder (hi mod 2^(t-27))·2^27 + lo, compared with 2^(t-1)
    tb = np.where(small, _LIMB + 1, t) - _LIMB  # >= 1
    q_big = hi >> tb
    rem_hi = hi & ((np.int64(1) << tb) - 1)
    half_hi = np.int64(1) << (tb - 1)  # 2^(t-1) = half_hi·2^27
    q = np.where(small, q_small, q_big)
    # compare the remainder with half: small: rem vs 2^(t-1); big: (rem_hi, lo) vs (half_hi, 0)
    half_small = np.where(ts > 0, np.int64(1) << np.maximum(ts - 1, 0), 1)
    above = np.where(small, rem_small > half_small,
                     (rem_hi > half_hi) | ((rem_hi == half_hi) & (lo > 0)))
    tie = np.where(small, (rem_small == half_small) & (ts > 0),
                   (rem_hi == half_hi) & (lo == 0))
    q = q + (above | (tie & ((q & 1) == 1)))
    return np.asarray(q, dtype=np.int64), np.asarray(t, dtype=np.int64)


def fp64_scale(x: Any, mantissa: Any, shift: Any) -> IntArray:
    """round_half_away(rn53(x · m) / 2^c): int32 ``x`` times the binary64 scale m·2^-c, the
    way ``std::round(double(x) * scale)`` computes it (module docstring).

    Formats: ``x`` int32 (checked), ``mantissa`` m in [0, 2^53), ``shift`` c in 0..126 (each a
    scalar or broadcastable per channel). Intermediates: |x|·m as two int64 limbs
    (|x|·(m >> 27) < 2^57, |x|·(m mod 2^27) < 2^58); the 53-bit rounded significand q < 2^53
    and its exponent t; the result |y| < 2^84 - saturated by the caller — values beyond int64
    are clamped to ±(2^62) here (the caller saturates to a narrow format). Roundings: two,
    named: the product to binary64 (``half_even``), then to an integer (``half_away``).
    """
    op = "fp64_scale"
    xa = check_range(x, INT32, "x", op)
    m = as_int64(mantissa, "mantissa")
    c = as_int64(shift, "shift")
    if m.size and (int(m.min()) < 0 or int(m.max()) >= 1 << SIGNIFICAND_BITS):
        raise SpecError(f"{op}: mantissa must lie in [0, 2^53), got {m.min()}..{m.max()}")
    if c.size and (int(c.min()) < 0 or int(c.max()) > MAX_SHIFT):
        raise SpecError(f"{op}: shift must lie in 0..{MAX_SHIFT}, got {c.min()}..{c.max()}")
    xa, m, c = np.broadcast_arrays(xa, m, c)
    mag = np.abs(xa)
    hi = mag * (m >> _LIMB)
    lo = mag * (m & ((1 << _LIMB) - 1))
    hi = hi + (lo >> _LIMB)
    lo = lo & ((1 << _LIMB) - 1)
    q, t = _round53(hi, lo)
    # |y| = round_half_away(q·2^(t-c)); q < 2^53 + 1
    right = c - t
    up = right <= 0
    cap = np.int64(1) << 62
    left = np.where(up, np.minimum(-right, 62), 0)
    big = up & ((q >> np.maximum(62 - left, 0)) > 0) & (q > 0)
    y_up = np.where(big, cap, q << left)
    r = np.minimum(np.where(up, 0, right), 63)
    y_down = round_shift(q, r, "half_away")  # q >= 0: ties away = ties up
    y = np.where(up, y_up, y_down)
    return np.asarray(np.where(xa < 0, -y, y), dtype=np.int64)


def requantize_fp64(x: Any, params: RequantParams, axis: int = -1) -> IntArray:
    """The ``requantize.fp64`` variant: saturate(fp64_scale(x - in_zero_point, m, c) +
    out_zero_point), per channel along ``axis``. Formats: x - in_zero_point int32 (checked);
    output ``params.out_format`` (saturated). Accuracy: <= 1/2 LSB + |x·m·2^-c|·2^-53."""
    xa = as_int64(x, "x")
    xz = xa - np.int64(params.in_zero_point) if params.in_zero_point else xa
    m, s = _channels(xa, params, axis, "requantize")
    y = fp64_scale(check_range(xz, INT32, "x - in_zero_point", "requantize"), m, s)
    return _offset_saturate(y, xa, params.out_zero_point, params.out_format)


declare(Variant(
    "requantize", "fp64", requantize_fp64, RequantParams,
    title="binary64 scale, round half away (TFLite reference FULLY_CONNECTED: std::round)",
    accepts="x: int32 accumulator (x - in_zero_point checked against int32)",
    produces="out_format (saturated), scale S_acc·m·2^-c",
    in_formats=lambda p: (INT32,),
    out_format=lambda p: p.out_format,
    widths=(Width("x - in_zero_point", "int32"),
            Width("|x|·(m >> 27), |x|·(m mod 2^27)", "int58 (two limbs of an 84-bit product)",
                  "proven"),
            Width("rn53(|x|·m)", "53-bit significand q and exponent t", "proven"),
            Width("y + out_zero_point", "int64", "proven"),
            Width("out", "out_format", "saturated")),
    roundings=(RoundingStep("x·m to binary64 (53 significant bits)", "half_even"),
               RoundingStep("rn53(x·m) / 2^c to an integer (std::round)", "half_away")),
    output="saturated",
    source="LiteRT tflite/kernels/internal/reference/integer_ops/fully_connected.h "
           "(FullyConnected with float scales: round(double(acc) * effective_output_scale))",
    accuracy="<= 1/2 LSB + |x·m·2^-c|·2^-53 against x·m·2^-c",
    binds="family",
    derive=Ref("refq.params.requantize:requant_params", {"family": "fp64"}),
    golden=(Ref("refq.golden.cases_engines:engine_cases"),),
    strategy=Ref("refq.crosscheck.strategies_engines:requantize_fp64"),
    meta={"coverage.bins": ("operand:x - in_zero_point", "clamp:out", "ends:c"),
          "coverage.model": Ref("refq.golden.coverage_models:requantize_fp64"),
          "coverage.corners": Ref("refq.golden.cases_corners:requantize_ieee")},
))

__all__ = ["MAX_SHIFT", "SIGNIFICAND_BITS", "fp64_scale", "requantize_fp64"]
