"""Softmax parameters from a real input scale S (exact Fractions of the float value).

Public codes compute these in float32 (I-BERT, I-ViT, FQ-ViT: ``torch.floor(x0 / S)`` with
S a float32 tensor) or double (TFLite); refq computes them exactly from the float64 value of
S, which can differ from float32 by 1 where the exact quotient is within float32 rounding
of an integer.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from refq.errors import SpecError
from refq.intmath import INT8, INT16, INT32, IntFormat, dyadic_from_real, quantize_multiplier
from refq.ops.softmax_ibert import IBertSoftmaxParams, LisParams
from refq.ops.softmax_refq import TABLE_ONE, RefqSoftmaxParams
from refq.ops.softmax_shift import ShiftmaxParams
from refq.ops.softmax_tflite import TfliteSoftmaxParams
from refq.params._real import exact, floor_frac

IBERT_X0 = Fraction("-0.6931")
IBERT_COEF = (Fraction("0.35815147"), Fraction("0.96963238"), Fraction(1))
LOG2E = Fraction("1.4426950408889634073599246810018921374266459541529859341354494")


def _iexp_ints(s: Fraction) -> tuple[int, int, int]:
    a, b, c = IBERT_COEF
    return floor_frac(IBERT_X0 / s), floor_frac((b / a) / s), floor_frac((c / a) / (s * s))


def ibert_softmax_params(
    scale: Any,
    *,
    n: int = 30,
    out_bits: int = 8,
    acc_bits: int = 64,
    exp_bits: int = 16,
    in_format: IntFormat = INT32,
) -> IBertSoftmaxParams:
    """I-BERT IntSoftmax parameters. exp16 = exp · S_exp / S_act with S_exp = a·S²/2^n and
    S_act = 1/(2^15 - 1) (QuantAct(16) with its calibrated max 1), as a dyadic pair of
    ``exp_bits`` bits (half_even; I-BERT uses a 31-bit mantissa in float64)."""
    s = exact(scale, "scale")
    x0, b, c = _iexp_ints(s)
    if x0 == 0 or x0 >= 0:
        raise SpecError(f"ibert_softmax_params: x0_int = {x0} (scale {scale} too large)")
    real = IBERT_COEF[0] * s * s / 2**n * (2**15 - 1)
    m, sh = dyadic_from_real(real, exp_bits, "half_even")
    return IBertSoftmaxParams(x0, b, c, n, acc_bits, in_format, m, sh, out_bits)


def lis_params(
    scale: Any, *, bits: int = 4, n: int = 30, acc_bits: int = 64, in_format: IntFormat = INT32
) -> LisParams:
    """FQ-ViT log-int softmax parameters (I-BERT i-exp integers of S)."""
    s = exact(scale, "scale")
    x0, b, c = _iexp_ints(s)
    if x0 >= 0:
        raise SpecError(f"lis_params: x0_int = {x0} (scale {scale} too large)")
    return LisParams(x0, b, c, n, acc_bits, in_format, bits)


def shiftmax_params(
    scale: Any, *, deploy: bool = False, in_format: IntFormat = INT32
) -> ShiftmaxParams:
    """I-ViT Shiftmax: x0_int = ⌊-1/S⌋; training n=15, b=16; deploy n=16, b=8."""
    s = exact(scale, "scale")
    x0 = floor_frac(-1 / s)
    return ShiftmaxParams(x0, 16 if deploy else 15, 8 if deploy else 16, in_format)


def tflite_softmax_params(
    scale: Any,
    beta: Any = 1.0,
    *,
    in_format: IntFormat = INT8,
    out_format: IntFormat = INT8,
) -> TfliteSoftmaxParams:
    """TFLite PreprocessSoftmaxScaling(beta, S, 5) + CalculateInputRadius(5, shift):
    real = min(β·S·2^26, 2^31 - 1) → QuantizeMultiplierGreaterThanOne;
    diff_min = -⌊31·2^26 / 2^shift⌋."""
    real = exact(beta, "beta") * exact(scale, "scale") * 2**26
    real = min(real, Fraction(2**31 - 1))
    m, shift = quantize_multiplier(real)
    if shift < 0:
        raise SpecError(f"tflite_softmax_params: β·S·2^26 = {float(real)} < 1 (left shift < 0)")
    diff_min = -floor_frac(Fraction(31 * 2**26, 2**shift))
    return TfliteSoftmaxParams(m, shift, diff_min, in_format, out_format)


def exp2_table(table_bits: int) -> tuple[int, ...]:
    """T[j] = round_half_even(2^15 · 2^(-j / 2^L)), j < 2^L, from 60-digit decimals."""
    with localcontext() as ctx:
        ctx.prec = 60
        n = 1 << table_bits
        out = []
        for j in range(n):
            v = Decimal(TABLE_ONE) * (Decimal(2) ** (Decimal(-j) / Decimal(n)))
            out.append(int(v.to_integral_value(rounding="ROUND_HALF_EVEN")))
    return tuple(out)


def refq_softmax_params(
    scale: Any, *, out_bits: int = 8, table_bits: int = 8, in_format: IntFormat = INT16
) -> RefqSoftmaxParams:
    """refq softmax: m/2^c = S·log2(e) with a 24-bit m (half_even) and the 2^-f table."""
    s = exact(scale, "scale")
    m, c = dyadic_from_real(s * LOG2E, 24, "half_even")
    if c < table_bits:
        raise SpecError(f"refq_softmax_params: scale {scale} too large (shift {c} < L)")
    return RefqSoftmaxParams(m, c, exp2_table(table_bits), out_bits, in_format)


__all__ = [
    "exp2_table",
    "ibert_softmax_params",
    "lis_params",
    "refq_softmax_params",
    "shiftmax_params",
    "tflite_softmax_params",
]
