"""TFLite / CMSIS-NN int8 softmax (reference_ops Softmax int8; arm_softmax_s8).

Pinned from gemmlowp fixed point (METHODS.md §3) with int32 intermediates throughout:

    diff = x - max(x)                                  int32; elements with diff < diff_min → -128
    s = SRDHM(diff · 2^left_shift, input_multiplier)   Q5.26 (FixedPoint<int32, 5>)
    e = exp_on_negative_values(s)                      Q0.31
    sum = Σ RoundingDivideByPOT(e, 12)                 Q12.19, int32 (checked)
    headroom = CLZ(sum) (uint32); shifted = (sum << headroom) - 2^31
    rec = one_over_one_plus_x_for_x_in_0_1(shifted)    Q0.31 (Newton, 48/17 and -32/17, 3 steps)
    out = RDBPOT(SRDHM(rec, e), (12 - headroom) + 31 - 8) - 128, clamped to [-128, 127]

Every multiply is SaturatingRoundingDoublingHighMul (ties away from zero), every shift
RoundingDivideByPOT, every left shift saturating, as gemmlowp. Output scale 1/256, zero
point -128 (int8) or 0 with ``out_format`` uint8. Accuracy vs float: <= 1 LSB (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import (
    INT8,
    INT32,
    UINT8,
    IntArray,
    IntFormat,
    check_range,
    ilog2,
    round_div,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from refq.ops._common import Params, int_input, need_format, need_int

_I32_MIN = -(2**31)
_I32_MAX = 2**31 - 1

# gemmlowp exp_on_negative_values / exp_on_interval_between_negative_one_quarter_and_0_excl
_EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8), Q0.31
_ONE_THIRD = 715827883  # 1/3, Q0.31
_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
           (2, 39332535), (3, 720401), (4, 242))  # (exponent, exp(-2^exponent) in Q0.31)
_48_OVER_17 = 1515870810  # Q2.29
_NEG_32_OVER_17 = -1010580540  # Q2.29


def _mul(a: IntArray, b: Any) -> IntArray:
    return saturating_rounding_doubling_high_mul(a, b)


def _sat_shl(x: IntArray, e: int) -> IntArray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0 (saturating left shift)."""
    thr = (1 << (31 - e)) - 1
    y = x << np.int64(e)
    out_: IntArray = np.asarray(
        np.where(x > thr, np.int64(_I32_MAX), np.where(x < -thr, np.int64(_I32_MIN), y)),
        dtype=np.int64,
    )
    return out_


def _exp_quarter(a: IntArray) -> IntArray:
    """exp on [-1/4, 0): Q0.31 in, Q0.31 out (4th-order Taylor around -1/8)."""
    x = a + np.int64(1 << 28)
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_mul(x4_over_4 + x3, _ONE_THIRD) + x2, 1)
    out_: IntArray = np.asarray(
        np.int64(_EXP_MINUS_ONE_EIGHTH) + _mul(np.full_like(a, _EXP_MINUS_ONE_EIGHTH), x + poly),
        dtype=np.int64,
    )
    return out_


def exp_on_negative_values(a: IntArray) -> IntArray:
    """gemmlowp exp_on_negative_values for FixedPoint<int32, 5> (Q5.26) a <= 0 → Q0.31."""
    quarter = np.int64(1 << 24)
    a_mod = (a & np.int64((1 << 24) - 1)) - quarter
    result = _exp_quarter(_sat_shl(a_mod, 5))
    remainder = a_mod - a
    for exponent, mult in _BARREL:
        bit = np.int64(1 << (26 + exponent))
        result = np.where((remainder & bit) != 0, _mul(result, mult), result)
    return np.where(a == 0, np.int64(_I32_MAX), result)


def one_over_one_plus_x(a: IntArray) -> IntArray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 a in [0, 1) → 1/(1+a) in Q0.31."""
    s = a + np.int64(_I32_MAX)  # RoundingHalfSum(a, One()) with truncating division
    half_den = round_div(s + np.where(s >= 0, 1, -1), 2, "trunc")
    x = np.int64(_48_OVER_17) + _mul(half_den, _NEG_32_OVER_17)
    one_q2 = np.int64(1 << 29)
    for _ in range(3):
        t = one_q2 - _mul(half_den, x)
        x = x + _sat_shl(_mul(x, t), 2)
    return _sat_shl(x, 1)


@dataclass(frozen=True)
class TfliteSoftmaxParams(Params):
    """TFLite softmax integers: input_multiplier in [2^30, 2^31), input_left_shift >= 0,
    diff_min < 0 (from PreprocessSoftmaxScaling / CalculateInputRadius, Q5.26 input)."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int
    in_format: IntFormat = INT8
    out_format: IntFormat = INT8

    def __post_init__(self) -> None:
        need_int(self.input_multiplier, "input_multiplier", 1 << 30, _I32_MAX)
        need_int(self.input_left_shift, "input_left_shift", 0, 31)
        need_int(self.diff_min, "diff_min", _I32_MIN, 0)
        need_format(self.in_format, "in_format")
        fmt = need_format(self.out_format, "out_format")
        if fmt not in (INT8, UINT8):
            raise SpecError("TfliteSoftmaxParams.out_format must be int8 or uint8")


def softmax_tflite(x: Any, params: TfliteSoftmaxParams) -> IntArray:
    """TFLite int8/uint8 softmax along the last axis (module docstring), bit-exact."""
    op = "softmax_tflite"
    p = params
    xa = int_input(x, p.in_format, "x", op, 1)
    diff = check_range(xa - xa.max(axis=-1, keepdims=True), INT32, "x - max", op)
    valid = diff >= p.diff_min
    shifted = check_range(np.where(valid, diff, 0) << np.int64(p.input_left_shift), INT32,
                          "diff << left_shift", op)
    e = exp_on_negative_values(_mul(shifted, p.input_multiplier))
    e = np.where(valid, e, 0)
    total = check_range(rounding_divide_by_pot(e, 12).sum(axis=-1, keepdims=True), INT32,
                        "sum_of_exps", op)
    headroom = 31 - ilog2(np.maximum(total, 1), "floor")  # CLZ of a positive int32
    shifted_sum = (total << headroom) - np.int64(1 << 31)
    rec = one_over_one_plus_x(shifted_sum)
    bits_over_unit = np.int64(12) - headroom
    out = rounding_divide_by_pot(_mul(np.broadcast_to(rec, e.shape), e),
                                 np.broadcast_to(bits_over_unit + 31 - 8, e.shape))
    out = out + np.int64(p.out_format.min if p.out_format.signed else 0)
    out = np.clip(out, p.out_format.min, p.out_format.max)
    res: IntArray = np.where(valid, out, np.int64(p.out_format.min)).astype(np.int64)
    return res


__all__ = ["TfliteSoftmaxParams", "exp_on_negative_values", "one_over_one_plus_x", "softmax_tflite"]
