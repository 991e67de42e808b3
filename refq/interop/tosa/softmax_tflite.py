"""``softmax.tflite`` (TFLite / CMSIS-NN int8 softmax, refq.ops.softmax_tflite) as TOSA int32
operators — the gemmlowp fixed-point primitives map one to one:

    SaturatingRoundingDoublingHighMul(a, b)   MUL(a, b, shift 31): ⌊(a·b + 2^30) / 2^31⌋, the
                                              same integer as gemmlowp's nudge-and-truncate
                                              (ties toward +∞); a = b = -2^31, the one case
                                              gemmlowp saturates, is excluded by intervals
    RoundingDivideByPOT(x, e)                 ARITHMETIC_RIGHT_SHIFT floor, plus 1 where the
                                              remainder x & (2^e - 1) exceeds
                                              (2^e - 1) >> 1 + [x < 0] (ties away from zero)
    SaturatingRoundingMultiplyByPOT<e>        LOGICAL_LEFT_SHIFT with two SELECTs at ±2^(31-e)
    headroom = CLZ(Σ); (Σ << headroom) - 2^31  LOGICAL_LEFT_SHIFT (wrapping) then flipping the
                                              top bit (BITWISE_XOR with -2^31)

Every other step is gemmlowp's own int32 arithmetic; the bounds the export relies on beyond
its interval arithmetic are gemmlowp's design ranges (checked exhaustively over each helper's
whole input domain by tests/interop/test_tosa_tflite_ranges.py, slow).
"""

from __future__ import annotations

from collections.abc import Sequence

from refq.interop.tosa.graph import ExportError, Graph, Val
from refq.interop.tosa.softmax import row_diff
from refq.interop.tosa.values import Operand, Value, as_i32
from refq.intmath import IntFormat
from refq.intmath.fixedpoint import Q2_29_48_OVER_17, Q2_29_NEG_32_OVER_17
from refq.ops.softmax_tflite import (
    Q0_31_EXP_MINUS_ONE_EIGHTH,
    Q0_31_EXP_MINUS_POW2,
    Q0_31_ONE_THIRD,
    TfliteSoftmaxParams,
)

_MAX = 2**31 - 1
_MIN = -(2**31)


def srdhm(g: Graph, a: Val, b: Val, proven: tuple[int, int] | None = None) -> Val:
    """gemmlowp SaturatingRoundingDoublingHighMul (module docstring)."""
    if a.lo == _MIN and b.lo == _MIN:
        raise ExportError("SaturatingRoundingDoublingHighMul: both operands may be -2^31")
    return g.mul(a, b, 31, proven=proven)


def srdhm_c(g: Graph, a: Val, c: int, proven: tuple[int, int] | None = None) -> Val:
    return srdhm(g, a, g.scalar(c, a.rank), proven)


def rdbpot(g: Graph, x: Val, e: int | Val) -> Val:
    """gemmlowp RoundingDivideByPOT: x / 2^e, ties away from zero (e in 0..31)."""
    r = x.rank
    if isinstance(e, int):
        if e == 0:
            return x
        mask = g.scalar((1 << e) - 1, r)
        half = g.scalar(((1 << e) - 1) >> 1, r)
    else:
        ec = g.maximum(g.minimum(e, g.scalar(31, r)), g.scalar(1, r))
        mask = g.lsr(g.scalar(-1, r), g.sub(g.scalar(32, r), ec))  # 2^e - 1
        half = g.ars(mask, 1)
        e = ec
    q = g.ars(x, e)
    rem = g.band(x, mask)
    thr = g.add(half, g.b2i(g.gt(g.scalar(0, r), x)))
    return g.add(q, g.b2i(g.gt(rem, thr)), proven=(min(q.lo, 0), max(q.hi + 1, 0)))


def sat_shl(g: Graph, x: Val, e: int) -> Val:
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0."""
    thr = (1 << (31 - e)) - 1
    if -thr <= x.lo and x.hi <= thr:
        return g.shl(x, e)
    y = g.shl(x, e, wrap=True)
    y = g.select(g.gt(x, g.scalar(thr, x.rank)), g.scalar(_MAX, x.rank), y)
    return g.select(g.gt(g.scalar(-thr, x.rank), x), g.scalar(_MIN, x.rank), y)


def exp_quarter(g: Graph, a: Val) -> Val:
    """exp on [-1/4, 0): Q0.31 in and out (gemmlowp's 4th-order Taylor around -1/8)."""
    x = g.addc(a, 1 << 28)
    x2 = srdhm(g, x, x)
    x3 = srdhm(g, x2, x)
    x4 = srdhm(g, x2, x2)
    x4_over_4 = rdbpot(g, x4, 2)
    poly = rdbpot(g, g.add(srdhm_c(g, g.add(x4_over_4, x3), Q0_31_ONE_THIRD), x2), 1)
    inner = srdhm_c(g, g.add(x, poly), Q0_31_EXP_MINUS_ONE_EIGHTH)
    return g.add(g.scalar(Q0_31_EXP_MINUS_ONE_EIGHTH, a.rank), inner, proven=(0, _MAX))


def exp_on_negative_values(g: Graph, a: Val) -> Val:
    """gemmlowp exp_on_negative_values, Q5.26 input a <= 0 → Q0.31."""
    r = a.rank
    a_mod = g.addc(g.bandc(a, (1 << 24) - 1), -(1 << 24))
    result = exp_quarter(g, sat_shl(g, a_mod, 5))
    remainder = g.sub(a_mod, a, proven=(0, _MAX))
    zero = g.scalar(0, r)
    for exponent, mult in Q0_31_EXP_MINUS_POW2:
        bit = 1 << (26 + exponent)
        if bit > remainder.hi:
            continue
        hit = g.lnot(g.eq(g.bandc(remainder, bit), zero))
        result = g.select(hit, srdhm_c(g, result, mult, proven=(0, _MAX)), result)
    return g.select(g.eq(a, zero), g.scalar(_MAX, r), result)


def one_over_one_plus_x(g: Graph, a: Val) -> Val:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 a in [0, 1) → 1/(1+a), Q0.31."""
    r = a.rank
    half_den = g.addc(g.ars(a, 1), 1 << 30)  # RoundingHalfSum(a, 1) for a >= 0
    x = g.add(g.scalar(Q2_29_48_OVER_17, r), srdhm_c(g, half_den, Q2_29_NEG_32_OVER_17),
              proven=(0, _MAX))
    one_q2 = g.scalar(1 << 29, r)
    for _ in range(3):
        t = g.sub(one_q2, srdhm(g, half_den, x), proven=(_MIN, _MAX))
        x = g.add(x, sat_shl(g, srdhm(g, x, t), 2), proven=(0, _MAX))
    return sat_shl(g, x, 1)


def tflite(g: Graph, ins: Sequence[Operand], p: TfliteSoftmaxParams, out: IntFormat) -> Value:
    op = "softmax.tflite"
    x = as_i32(g, ins[0])
    r = x.rank
    diff = row_diff(g, x, op)
    valid = g.ge(diff, g.scalar(p.diff_min, r))
    d0 = g.select(valid, diff, g.scalar(0, r))
    shifted = g.shl(d0, p.input_left_shift, wrap=True)
    lo = max(d0.lo << p.input_left_shift, _MIN)
    if d0.lo << p.input_left_shift < _MIN:
        g.assumptions.append(f"{op}: diff << left_shift within int32 (refq-checked)")
    shifted = g.with_interval(shifted, lo, 0)
    e = exp_on_negative_values(g, srdhm_c(g, shifted, p.input_multiplier))
    e = g.select(valid, e, g.scalar(0, r))
    total = g.reduce("SUM", rdbpot(g, e, 12), -1)
    total1 = g.maximum(total, g.scalar(1, r))
    headroom = g.with_interval(g.clz(total1), 1, 31)  # 1 <= Σ < 2^31
    shifted_sum = g.bxor(g.shl(total1, headroom, wrap=True), g.scalar(_MIN, r))
    shifted_sum = g.with_interval(shifted_sum, 0, _MAX)  # Σ·2^h - 2^31 in [0, 2^31)
    rec = one_over_one_plus_x(g, shifted_sum)
    bits = g.sub(g.scalar(12 + 31 - 8, r), headroom)  # refq checks it is at most 31
    g.assumptions.append(f"{op}: RoundingDivideByPOT exponent 35 - headroom <= 31 "
                         "(refq-checked)")
    y = rdbpot(g, srdhm(g, rec, e), bits)
    fmt = p.out_format
    y = g.addc(y, fmt.min if fmt.signed else 0)
    y = g.clamp(y, fmt.min, fmt.max)
    return g.select(valid, y, g.scalar(fmt.min, r))



__all__ = ["exp_on_negative_values", "one_over_one_plus_x", "rdbpot",
           "sat_shl", "srdhm", "tflite"]
