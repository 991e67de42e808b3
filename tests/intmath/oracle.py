"""Independent Python-int oracles for refq.intmath, written from the C++/paper definitions.

Nothing here imports refq: every function works on Python ints (arbitrary precision) or
fractions.Fraction, one scalar at a time, so it cannot share a bug with the vectorized code.
"""

from __future__ import annotations

import math
from fractions import Fraction

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def round_rational(num: int, den: int, mode: str) -> int:
    """num/den rounded with a named rounding, via exact Fraction arithmetic."""
    f = Fraction(num, den)
    fl = math.floor(f)
    frac = f - fl
    if mode == "floor":
        return fl
    if mode == "ceil":
        return math.ceil(f)
    if mode == "trunc":
        return math.trunc(f)
    half = Fraction(1, 2)
    if frac > half:
        return fl + 1
    if frac < half:
        return fl
    if mode == "half_up":
        return fl + 1
    if mode == "half_away":
        return fl + 1 if f > 0 else fl
    if mode == "half_even":
        return fl if fl % 2 == 0 else fl + 1
    raise ValueError(mode)


def c_div(a: int, b: int) -> int:
    """C/C++ integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul, as written in fixedpoint.h."""
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return c_div(ab + nudge, 1 << 31)


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT (two's-complement bit ops on Python ints)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm_double(x: int, m: int, shift: int) -> int:
    left = max(shift, 0)
    right = max(-shift, 0)
    return rdbpot(srdhm(x * (1 << left), m), right)


def mbqm_single(x: int, m: int, shift: int) -> int:
    total = 31 - shift
    return (x * m + (1 << (total - 1))) >> total


def quantize_multiplier(real: float, single: bool = False) -> tuple[int, int]:
    """TFLite QuantizeMultiplier with math.frexp and std::round (half away from zero)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    scaled = Fraction(q) * (1 << 31)  # exact: a power-of-two scaling of a double
    q_fixed = math.floor(scaled + Fraction(1, 2))  # half away from zero, scaled > 0
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single and shift > 30:
        return (1 << 31) - 1, 30
    return q_fixed, shift


def dyadic_from_real(real: float, bits: int, mode: str) -> tuple[int, int]:
    m, e = math.frexp(real)
    f = Fraction(m) * (1 << bits)
    b = round_rational(f.numerator, f.denominator, mode)
    c = bits - e
    if b == 1 << bits:
        b //= 2
        c -= 1
    return b, c
