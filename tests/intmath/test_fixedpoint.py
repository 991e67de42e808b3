"""gemmlowp / TFLite fixed-point primitives against the C++-semantics oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from refq.errors import RangeError, SpecError
from refq.intmath import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

from .oracle import I32_MAX, I32_MIN, mbqm_double, mbqm_single, rdbpot, srdhm
from .oracle import quantize_multiplier as oracle_qm

I32 = st.integers(I32_MIN, I32_MAX)
MULT = st.one_of(st.just(0), st.integers(1 << 30, I32_MAX))


@given(a=I32, b=I32)
@example(a=I32_MIN, b=I32_MIN)  # the one saturating case
@example(a=I32_MIN, b=I32_MAX)
@example(a=I32_MAX, b=I32_MAX)
@example(a=1, b=1 << 30)  # ab = 2^30: exactly one half → 1
@example(a=-1, b=1 << 30)  # -1/2 → 0: the negative nudge 1 - 2^30 sends ties toward +∞
@example(a=3, b=1 << 30)
@example(a=-3, b=1 << 30)
def test_srdhm_matches_oracle(a: int, b: int) -> None:
    assert int(saturating_rounding_doubling_high_mul(a, b)) == srdhm(a, b)


def test_srdhm_ties_go_up_not_away() -> None:
    """gemmlowp's SRDHM adds 2^30 (ab >= 0) or 1 - 2^30 (ab < 0) and divides by 2^31
    truncating: (-2^30 + 1 - 2^30) / 2^31 truncates to 0, so -1/2 → 0 and -3/2 → -1 —
    ties toward +∞ (half_up), not away from zero. Hand-derived values."""
    got = saturating_rounding_doubling_high_mul(np.array([-3, -1, 1, 3]), 1 << 30)
    np.testing.assert_array_equal(got, np.array([-1, 0, 1, 2], dtype=np.int64), strict=True)


@given(x=I32, e=st.integers(0, 31))
@example(x=I32_MIN, e=31)
@example(x=I32_MAX, e=31)
@example(x=-3, e=1)  # -1.5 → -2
@example(x=3, e=1)  # 1.5 → 2
@example(x=-1, e=1)  # -0.5 → -1
@example(x=5, e=0)
def test_rdbpot_matches_oracle(x: int, e: int) -> None:
    assert int(rounding_divide_by_pot(x, e)) == rdbpot(x, e)


@given(x=I32, m=MULT, shift=st.integers(-31, 30))
@example(x=I32_MIN, m=I32_MAX, shift=0)
@example(x=I32_MIN, m=1 << 30, shift=-31)
@example(x=1, m=1 << 30, shift=-31)
@example(x=I32_MAX, m=I32_MAX, shift=-31)
@example(x=1, m=I32_MAX, shift=30)
def test_mbqm_double_matches_oracle(x: int, m: int, shift: int) -> None:
    left = max(shift, 0)
    if not I32_MIN <= x * (1 << left) <= I32_MAX:
        with pytest.raises(RangeError, match="left_shift"):
            multiply_by_quantized_multiplier(x, m, shift, "double")
        return
    assert int(multiply_by_quantized_multiplier(x, m, shift, "double")) == mbqm_double(x, m, shift)


@given(x=I32, m=MULT, shift=st.integers(-31, 30))
@example(x=I32_MIN, m=I32_MAX, shift=0)
@example(x=-1, m=1 << 30, shift=0)  # -1/2 → 0 (ties toward +inf)
@example(x=1, m=1 << 30, shift=0)  # 1/2 → 1
@example(x=I32_MAX, m=I32_MAX, shift=-31)
def test_mbqm_single_matches_oracle(x: int, m: int, shift: int) -> None:
    want = mbqm_single(x, m, shift)
    if not I32_MIN <= want <= I32_MAX:
        with pytest.raises(RangeError):
            multiply_by_quantized_multiplier(x, m, shift, "single")
        return
    assert int(multiply_by_quantized_multiplier(x, m, shift, "single")) == want


def test_mbqm_vectorized() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-(2**20), 2**20, 1000)
    m = rng.integers(1 << 30, 2**31, 1000)
    s = rng.integers(-31, 11, 1000)
    got = multiply_by_quantized_multiplier(x, m, s)
    want = np.array([mbqm_double(int(a), int(b), int(c)) for a, b, c in zip(x, m, s, strict=True)])
    np.testing.assert_array_equal(got, want, strict=True)


finite_reals = st.floats(min_value=0.0, max_value=2.0**30, allow_nan=False, allow_subnormal=True)


@given(real=finite_reals)
@example(real=0.0)
@example(real=1.0)
@example(real=0.5)
@example(real=1.0 - 2.0**-33)  # mantissa rounds up to 2^31: the carry
@example(real=2.0**-32)  # shift -31: kept
@example(real=2.0**-33)  # shift -32: flushed to zero
@example(real=2.0**30 - 1.0)
@example(real=0.0005)
def test_quantize_multiplier_matches_oracle(real: float) -> None:
    want = oracle_qm(real)
    if want[1] > 30:
        with pytest.raises(SpecError):
            quantize_multiplier(real)
        return
    assert quantize_multiplier(real) == want
    m = want[0]
    assert m == 0 or (1 << 30) <= m < (1 << 31)


@given(real=st.floats(min_value=2.0**30, max_value=2.0**40))
def test_quantize_multiplier_single_clamps_large_shifts(real: float) -> None:
    assert quantize_multiplier(real, scheme="single") == oracle_qm(real, single=True)


def test_multiplier_carry_is_renormalised() -> None:
    real = 1.0 - 2.0**-33
    m, s = quantize_multiplier(real)
    assert (m, s) == (1 << 30, 1)
    assert m * 2.0 ** (s - 31) == 1.0


@given(real=st.floats(min_value=2.0**-31, max_value=2.0**20), x=st.integers(-(2**10), 2**10))
def test_mbqm_approximates_real_product(real: float, x: int) -> None:
    m, s = quantize_multiplier(real)
    assume(m != 0 and s <= 20)
    got = int(multiply_by_quantized_multiplier(x, m, s))
    # Each rounding contributes at most 1/2; the multiplier error at most 2^-31 relative.
    assert abs(got - x * real) <= 1.0 + abs(x * real) * 2.0**-30


@pytest.mark.parametrize(
    ("call", "exc", "needle"),
    [
        (lambda: multiply_by_quantized_multiplier(1, (1 << 30) - 1, 0), SpecError, "multiplier"),
        (lambda: multiply_by_quantized_multiplier(1, 1 << 31, 0), SpecError, "multiplier"),
        (lambda: multiply_by_quantized_multiplier(1, -(1 << 30), 0), SpecError, "multiplier"),
        (lambda: multiply_by_quantized_multiplier(1, 1 << 30, 31), SpecError, "shift"),
        (lambda: multiply_by_quantized_multiplier(1, 1 << 30, -32), SpecError, "shift"),
        (lambda: multiply_by_quantized_multiplier(1 << 31, 1 << 30, 0), RangeError, "x"),
        (lambda: multiply_by_quantized_multiplier(1 << 20, 1 << 30, 12), RangeError, "left_shift"),
        (lambda: multiply_by_quantized_multiplier(1.0, 1 << 30, 0), SpecError, "x"),
        (lambda: multiply_by_quantized_multiplier(1, 1 << 30, 0, "triple"), SpecError, "scheme"),
        (lambda: saturating_rounding_doubling_high_mul(I32_MAX + 1, 1), RangeError, "'a'"),
        (lambda: rounding_divide_by_pot(1, 32), SpecError, "exponent"),
        (lambda: rounding_divide_by_pot(1, -1), SpecError, "exponent"),
        (lambda: quantize_multiplier(-0.5), SpecError, ">= 0"),
        (lambda: quantize_multiplier(math.inf), SpecError, "finite"),
        (lambda: quantize_multiplier(math.nan), SpecError, "finite"),
        (lambda: quantize_multiplier(2.0**31), SpecError, "shift"),
        (lambda: quantize_multiplier("0.5"), SpecError, "real"),
    ],
)
def test_bad_input(call: object, exc: type[Exception], needle: str) -> None:
    with pytest.raises(exc, match=needle):
        call()  # type: ignore[operator]
