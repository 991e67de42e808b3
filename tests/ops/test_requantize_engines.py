"""The engine requantization families (fp32, fp64, double_up) against independent oracles.

fp32 and fp64 are checked against the hardware's own float arithmetic (NumPy float32 /
Python float64, here in a test where floats are the point: the integer kernels must
reproduce them bit for bit); double_up against the ruy x86 kernel's formula re-typed in
Python integers (google/ruy ruy/kernel_avx512.cc, Kernel8bitAvx512 at d681fa8:
``_mm512_mul_epi32``, ``+ (1 << 30)``, ``>> 31``, then ``rounding_right_shift``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refq.errors import RangeError, SpecError
from refq.intmath import INT8, multiply_by_quantized_multiplier
from refq.ops import RequantParams, requantize
from refq.ops.requantize_double_up import double_up_scale
from refq.ops.requantize_fp32 import fp32_scale, fp32_zp_round, round_significand
from refq.ops.requantize_fp64 import fp64_scale
from refq.params import fp32_multiplier, fp64_multiplier

I32 = st.integers(-(2**31), 2**31 - 1)


def _f32_oracle(x: int, m: int, c: int) -> int:
    """rint(float32(float32(x) * float32(m·2^-c))) computed by NumPy's float32."""
    mult = np.float32(m * 2.0**-c)
    assert float(mult) == m * 2.0**-c  # exactly representable
    prod = np.float32(np.float32(x) * mult)
    return int(np.rint(np.float64(prod)))


@given(I32, st.integers(0, (1 << 24) - 1), st.integers(0, 63))
@example(2**24 + 1, 1, 1)  # x itself rounds to binary32 (2^24 + 1 -> 2^24)
@example(257 * 2**16 + 1, 1, 17)  # that rounding decides a tie: 128.5 -> 128
@example(5335998, 10173989, 38)  # the product rounds up onto a tie: 198, not 197
@example(2**31 - 1, (1 << 24) - 1, 23)  # the largest product
@example(-(2**31), (1 << 24) - 1, 63)
@example(3, 1, 1)  # 1.5 -> 2, ties to even
@example(5, 1, 1)  # 2.5 -> 2
def test_fp32_scale_is_cpu_float32_arithmetic(x: int, m: int, c: int) -> None:
    assert int(fp32_scale(np.array([x]), m, c)[0]) == _f32_oracle(x, m, c)


def _f32_zp_oracle(x: int, m: int, c: int, zp: int) -> int:
    """rint(float32(float32(float32(x) * m) + zp)), NumPy's float32."""
    prod = np.float32(np.float32(x) * np.float32(m * 2.0**-c))
    return int(np.rint(np.float64(np.float32(prod + np.float32(zp)))))


@given(I32, st.integers(1, (1 << 24) - 1), st.integers(0, 63), st.integers(-300, 300))
@example(1, 1, 1, 1)  # 0.5 + 1 = 1.5 -> 2 (fp32 adds after: 0 + 1 = 1)
@example(-5, 1, 1, 101)  # -2.5 + 101 = 98.5 -> 98
@example(-1247178405, 4343027, 17, -155)  # a large sum rounded to binary32 before rint
@example(3, 1, 41, 7)  # the scaled value is below 2^-16: the zero point itself
def test_fp32_zp_round_is_cpu_float32_arithmetic(x: int, m: int, c: int, zp: int) -> None:
    assert int(fp32_zp_round(np.array([x]), m, c, zp)[0]) == _f32_zp_oracle(x, m, c, zp)


def test_round_significand_ties_to_even() -> None:
    got = round_significand(np.array([2**24 + 1, 2**24 + 3, -(2**24 + 1), 2**31 - 1, 5, 0]))
    np.testing.assert_array_equal(
        got, np.array([2**24, 2**24 + 4, -(2**24), 2**31, 5, 0]), strict=False
    )


def _f64_oracle(x: int, m: int, c: int) -> int:
    """std::round(double(x) * scale): Python's float product, then half away, exactly."""
    p = Fraction(float(x) * (m * 2.0**-c))
    mag = abs(p)
    whole = mag.numerator // mag.denominator
    r = whole + (mag - whole >= Fraction(1, 2))
    return -r if p < 0 else r


@given(I32, st.integers(0, (1 << 53) - 1), st.integers(40, 126))
@example(3, 1, 1)  # 1.5 -> 2 (half away)
@example(-3, 1, 1)  # -1.5 -> -2
@example(-5, 1, 1)  # -2.5 -> -3 (not to even)
@example(2**31 - 1, (1 << 53) - 1, 60)
@example(-(2**31), (1 << 48) + 1, 70)  # a product that needs 84 bits, rounded to 53
def test_fp64_scale_is_cpp_double_round(x: int, m: int, c: int) -> None:
    assert int(fp64_scale(np.array([x]), m, c)[0]) == _f64_oracle(x, m, c)


def test_fp64_scale_ties_away_from_zero() -> None:
    np.testing.assert_array_equal(
        fp64_scale(np.array([3, -3, 5, -5, 1, -1]), 1, 1), np.array([2, -2, 3, -3, 1, -1])
    )


def _ruy(x: int, m: int, shift: int) -> int:
    """ruy's x86 kernel in Python ints (re-typed from kernel_avx512.cc, see module doc)."""
    left, right = max(shift, 0), max(-shift, 0)
    a = x << left
    assert -(2**31) <= a < 2**31
    y1 = (a * m + (1 << 30)) >> 31
    nudge = (1 << (right - 1)) if right > 0 else 0
    return (y1 + nudge) >> right


@given(I32, st.integers(1 << 30, 2**31 - 1), st.integers(-31, 0))
@example(-98304, 1610612736, -14)  # -4.5: double_up -4, double (away) -5
@example(58123, 1938971974, -9)
def test_double_up_is_ruy_x86(x: int, m: int, shift: int) -> None:
    assert int(double_up_scale(np.array([x]), m, shift)[0]) == _ruy(x, m, shift)


def test_double_up_differs_from_both_tflite_families() -> None:
    # -4.5 exactly: double (half away) -5, single (half up) -4, double_up -4; and a case
    # where the first rounding decides: a·M/2^31 = 52479.49997 -> single 102, double_up 102
    x = np.array([-98304])
    assert int(double_up_scale(x, 1610612736, -14)[0]) == -4
    assert int(multiply_by_quantized_multiplier(x, 1610612736, -14, "double")[0]) == -5
    # double rounding vs single: 1581055.5025·2^-14 is 96.49997; the first rounding gives
    # 1581056 = 96.5·2^14 exactly and the second rounds it up
    x2 = np.array([1912748])
    assert int(double_up_scale(x2, 1775085290, -14)[0]) == 97
    assert int(multiply_by_quantized_multiplier(x2, 1775085290, -14, "single")[0]) == 96


def test_requantize_dispatches_the_new_families() -> None:
    x = np.array([3, -3, 1000, -1000])
    y32 = requantize(x, RequantParams("fp32", (1,), (1,), out_format=INT8))
    np.testing.assert_array_equal(y32, np.array([2, -2, 127, -128]))
    y64 = requantize(x, RequantParams("fp64", (1,), (1,), out_format=INT8))
    np.testing.assert_array_equal(y64, np.array([2, -2, 127, -128]))
    yup = requantize(x, RequantParams("double_up", (1 << 30,), (0,), out_format=INT8))
    np.testing.assert_array_equal(yup, np.array([2, -1, 127, -128]))  # 1.5 -> 2, -1.5 -> -1


@pytest.mark.parametrize(
    ("family", "multiplier", "shift"),
    [
        ("fp32", 1 << 24, 0),  # not a binary32 significand
        ("fp32_zp", 1, 64),
        ("fp32", 1, 64),
        ("fp32", 1, -1),
        ("fp64", 1 << 53, 0),
        ("fp64", 1, -1),
        ("double_up", 5, 0),  # not a TFLite Q0.31 multiplier
        ("double_up", 1 << 30, 31),
        ("dyadic", 1, 64),
    ],
)
def test_bad_parameters_are_refused(family: str, multiplier: int, shift: int) -> None:
    with pytest.raises(SpecError):
        RequantParams(family, (multiplier,), (shift,))


def test_inputs_outside_int32_are_refused() -> None:
    for family, m in (("fp32", 1), ("fp64", 1), ("double_up", 1 << 30)):
        with pytest.raises(RangeError):
            requantize(np.array([2**31]), RequantParams(family, (m,), (1,)))


@given(st.floats(1e-12, 1e6))
def test_multipliers_from_reals_are_the_nearest_binary_values(real: float) -> None:
    m, c = fp32_multiplier(real)
    assert m * 2.0**-c == float(np.float32(real))
    m, c = fp64_multiplier(real)
    assert m * 2.0**-c == real
    assert m % 2 == 1 or m == 0 or c == 0  # reduced as far as a right shift allows


def test_fp32_multiplier_rejects_what_needs_a_left_shift() -> None:
    with pytest.raises(SpecError):
        fp32_multiplier(2.0**25)
    assert fp64_multiplier(math.ldexp(1, -100)) == (1, 100)
