"""Every magic constant of the TFLite softmax is the real number it stands for, rounded to its
fixed-point format (gemmlowp's GEMMLOWP_CHECKED_FIXEDPOINT_CONSTANT, done here in 60-digit
decimals), and every shift derives from the named integer-bit constants."""

from __future__ import annotations

import importlib
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest

from refq.intmath import fixedpoint

T = importlib.import_module("refq.ops.softmax_tflite")  # the module, not the function


def fixed(real: Decimal, frac_bits: int) -> int:
    """round(real · 2^frac_bits), ties away from zero (gemmlowp FromDouble)."""
    with localcontext() as ctx:
        ctx.prec = 60
        v = real * (Decimal(2) ** frac_bits)
        sign = -1 if v < 0 else 1
        return sign * int(abs(v).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def exp(x: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        return x.exp()


@pytest.mark.parametrize(("name", "raw", "real", "frac"), [
    ("exp(-1/8)", T.Q0_31_EXP_MINUS_ONE_EIGHTH, exp(Decimal(-1) / 8), 31),
    ("1/3", T.Q0_31_ONE_THIRD, Decimal(1) / 3, 31),
    ("48/17", fixedpoint.Q2_29_48_OVER_17, Decimal(48) / 17, 29),
    ("-32/17", fixedpoint.Q2_29_NEG_32_OVER_17, Decimal(-32) / 17, 29),
    *[(f"exp(-2^{k})", raw, exp(-(Decimal(2) ** k)), 31) for k, raw in T.Q0_31_EXP_MINUS_POW2],
])
def test_constant_is_its_real_value(name: str, raw: int, real: Decimal, frac: int) -> None:
    assert raw == fixed(real, frac), name


def test_integer_bit_constants_are_tflites() -> None:
    # kScaledDiffIntegerBits = 5, kAccumulationIntegerBits = 12 (TFLite reference softmax)
    assert (T.SCALED_DIFF_INTEGER_BITS, T.ACCUMULATION_INTEGER_BITS) == (5, 12)
    assert T.DIFF_FRACTIONAL_BITS == 26
    assert [k for k, _ in T.Q0_31_EXP_MINUS_POW2] == list(range(-2, 5))


def test_a_wrong_constant_would_be_caught() -> None:
    assert fixed(exp(Decimal(-1) / 8), 31) != T.Q0_31_EXP_MINUS_ONE_EIGHTH + 1
