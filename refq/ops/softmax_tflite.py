"""TFLite / CMSIS-NN int8 softmax (reference_ops Softmax int8; arm_softmax_s8).

Pinned from gemmlowp fixed point (METHODS.md §3) with int32 intermediates throughout:

    diff = x - max(x)                                  int32; elements with diff < diff_min → -128
    s = SRDHM(diff · 2^left_shift, input_multiplier)   Q5.26 (FixedPoint<int32, 5>)
    e = exp_on_negative_values(s)                      Q0.31
    sum = Σ RoundingDivideByPOT(e, 12)                 Q12.19, int32 (checked)
    headroom = CLZ(sum) (uint32); shifted = (sum << headroom) - 2^31
    rec = one_over_one_plus_x_for_x_in_0_1(shifted)    Q0.31 (Newton, 48/17 and -32/17, 3 steps)
    out = RDBPOT(SRDHM(rec, e), (12 - headroom) + 31 - 8) - 128, clamped to [-128, 127]

Every multiply is SaturatingRoundingDoublingHighMul (ties toward +inf), every shift
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
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from refq.intmath.fixedpoint import (
    one_over_one_plus_x_for_x_in_0_1,
    saturating_rounding_multiply_by_pot,
)
from refq.ops._common import Params, int_input, need_format, need_int
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare

_I32_MIN = -(2**31)
_I32_MAX = 2**31 - 1

SCALED_DIFF_INTEGER_BITS = 5
"""kScaledDiffIntegerBits: the scaled input difference is FixedPoint<int32, 5> (Q5.26)."""
ACCUMULATION_INTEGER_BITS = 12
"""kAccumulationIntegerBits: the sum of exps is FixedPoint<int32, 12> (Q12.19)."""
DIFF_FRACTIONAL_BITS = 31 - SCALED_DIFF_INTEGER_BITS
"""26: fractional bits of Q5.26."""

# Q0.31 constants of gemmlowp's exp_on_negative_values and
# exp_on_interval_between_negative_one_quarter_and_0_excl; tests/ops/test_tflite_constants.py
# checks each against round(real·2^31) (gemmlowp GEMMLOWP_CHECKED_FIXEDPOINT_CONSTANT).
Q0_31_EXP_MINUS_ONE_EIGHTH = 1895147668
"""exp(-1/8) in Q0.31."""
Q0_31_ONE_THIRD = 715827883
"""1/3 in Q0.31."""
Q0_31_EXP_MINUS_POW2 = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                        (2, 39332535), (3, 720401), (4, 242))
"""(k, exp(-2^k) in Q0.31) for the barrel shifter of exp_on_negative_values, k = -2..4."""


def _exp_quarter(a: IntArray) -> IntArray:
    """exp on [-1/4, 0): Q0.31 in, Q0.31 out (4th-order Taylor around -1/8)."""
    mul = saturating_rounding_doubling_high_mul
    x = a + np.int64(1 << 28)  # a + 1/8 in Q0.31
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(mul(x4_over_4 + x3, Q0_31_ONE_THIRD) + x2, 1)
    out_: IntArray = np.asarray(
        np.int64(Q0_31_EXP_MINUS_ONE_EIGHTH)
        + mul(np.full_like(a, Q0_31_EXP_MINUS_ONE_EIGHTH), x + poly),
        dtype=np.int64,
    )
    return out_


def exp_on_negative_values(a: IntArray) -> IntArray:
    """gemmlowp exp_on_negative_values for FixedPoint<int32, 5> (Q5.26) a <= 0 → Q0.31:
    a = -(k/4 + r) with r in (0, 1/4]: exp(-r) by :func:`_exp_quarter`, then one multiply
    by exp(-2^k) per set bit of the remainder (the barrel shifter)."""
    quarter = np.int64(1 << (DIFF_FRACTIONAL_BITS - 2))  # 1/4 in Q5.26
    a_mod = (a & (quarter - np.int64(1))) - quarter
    result = _exp_quarter(saturating_rounding_multiply_by_pot(a_mod, SCALED_DIFF_INTEGER_BITS))
    remainder = a_mod - a
    for exponent, mult in Q0_31_EXP_MINUS_POW2:
        bit = np.int64(1 << (DIFF_FRACTIONAL_BITS + exponent))
        result = np.where((remainder & bit) != 0,
                          saturating_rounding_doubling_high_mul(result, mult), result)
    return np.where(a == 0, np.int64(_I32_MAX), result)


one_over_one_plus_x = one_over_one_plus_x_for_x_in_0_1
"""gemmlowp one_over_one_plus_x_for_x_in_0_1 (now in :mod:`refq.intmath.fixedpoint`)."""


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
    mul = saturating_rounding_doubling_high_mul
    xa = int_input(x, p.in_format, "x", op, 1)
    diff = check_range(xa - xa.max(axis=-1, keepdims=True), INT32, "x - max", op)
    valid = diff >= p.diff_min
    shifted = check_range(np.where(valid, diff, 0) << np.int64(p.input_left_shift), INT32,
                          "diff << left_shift", op)
    e = exp_on_negative_values(mul(shifted, p.input_multiplier))
    e = np.where(valid, e, 0)
    total = check_range(
        rounding_divide_by_pot(e, ACCUMULATION_INTEGER_BITS).sum(axis=-1, keepdims=True),
        INT32, "sum_of_exps", op)
    headroom = 31 - ilog2(np.maximum(total, 1), "floor")  # CLZ of a positive int32
    shifted_sum = (total << headroom) - np.int64(1 << 31)  # in [0, 1) as Q0.31
    rec = one_over_one_plus_x_for_x_in_0_1(shifted_sum)
    bits_over_unit = np.int64(ACCUMULATION_INTEGER_BITS) - headroom
    out_bits = 8  # the int8 / uint8 output: exps in Q0.31 scaled to 2^8 steps
    out = rounding_divide_by_pot(mul(np.broadcast_to(rec, e.shape), e),
                                 np.broadcast_to(bits_over_unit + 31 - out_bits, e.shape))
    out = out + np.int64(p.out_format.min if p.out_format.signed else 0)
    out = np.clip(out, p.out_format.min, p.out_format.max)
    res: IntArray = np.where(valid, out, np.int64(p.out_format.min)).astype(np.int64)
    return res


declare(Variant(
    "softmax", "tflite", softmax_tflite, TfliteSoftmaxParams,
    title="TFLite / CMSIS-NN int8 softmax in gemmlowp fixed point",
    accepts="x: in_format (default int8), scale S",
    produces="out_format int8 (zero point -128) or uint8 (zero point 0), scale 1/256",
    out_format=lambda p: p.out_format,
    widths=(Width("diff = x - max(x)", "int32"),
            Width("diff << input_left_shift", "int32"),
            Width("s = SRDHM(diff·2^left_shift, input_multiplier)", "int32 Q5.26", "saturated"),
            Width("e = exp_on_negative_values(s)", "int32 Q0.31", "saturated"),
            Width("sum = Σ RDBPOT(e, 12)", "int32 Q12.19"),
            Width("rec = 1/(1 + shifted sum)", "int32 Q0.31", "saturated"),
            Width("out", "out_format", "saturated")),
    roundings=(RoundingStep("every SaturatingRoundingDoublingHighMul", "half_away"),
               RoundingStep("every RoundingDivideByPOT", "half_away"),
               RoundingStep("RoundingHalfSum in one_over_one_plus_x", "trunc")),
    output="saturated",
    source="TFLite reference_ops Softmax (int8) / CMSIS-NN arm_softmax_s8; gemmlowp "
           "fixedpoint.h",
    accuracy="<= 1 LSB (1/256) against the float softmax; CMSIS-NN vectors bit-exact",
    derive=Ref("refq.params.softmax:tflite_softmax_params"),
    golden=(Ref("refq.golden.cases_kernels:softmax_rows", {"seed": 3004, "scale": "0.0625"}),),
    strategy=Ref("refq.crosscheck.strategies:softmax_rows", {"scales": ("0.02", "0.5")}),
    meta={"lower": Ref("refq.program.lower_kernels:softmax_tflite"), "lower.in_bits": 8,
          "tosa.lowering": Ref("refq.interop.tosa.softmax_tflite:tflite"),
          "coverage.bins": ("ends:x", "rows:rows", "ends:out"),
          "coverage.model": Ref("refq.golden.coverage_models:softmax_rows",
                             {"variant": "tflite"}),
          "coverage.corners": Ref("refq.golden.cases_corners:softmax")},
))

__all__ = [
    "ACCUMULATION_INTEGER_BITS",
    "Q0_31_EXP_MINUS_ONE_EIGHTH",
    "Q0_31_EXP_MINUS_POW2",
    "Q0_31_ONE_THIRD",
    "SCALED_DIFF_INTEGER_BITS",
    "TfliteSoftmaxParams",
    "exp_on_negative_values",
    "one_over_one_plus_x",
    "softmax_tflite",
]
