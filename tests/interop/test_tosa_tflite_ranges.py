"""The gemmlowp design ranges the softmax.tflite translation relies on (its ``proven``
bounds in refq/interop/tosa/softmax_tflite.py), checked exhaustively over each helper's whole
int32 input domain with refq's own int64 arithmetic. Slow: 2^31 inputs per helper."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from refq.intmath import rounding_divide_by_pot
from refq.intmath.fixedpoint import (
    Q2_29_48_OVER_17,
    Q2_29_NEG_32_OVER_17,
    saturating_rounding_doubling_high_mul,
    saturating_rounding_multiply_by_pot,
)
from refq.ops.softmax_tflite import (
    Q0_31_EXP_MINUS_ONE_EIGHTH,
    Q0_31_ONE_THIRD,
    exp_on_negative_values,
)

I32 = (-(2**31), 2**31 - 1)
CHUNK = 1 << 22
mul = saturating_rounding_doubling_high_mul


def _in32(v: npt.NDArray[np.int64]) -> bool:
    return bool(v.min() >= I32[0] and v.max() <= I32[1])


@pytest.mark.slow
def test_exp_quarter_and_the_barrel_stay_within_their_claimed_ranges() -> None:
    for start in range(-(2**31), 1, CHUNK):
        a = np.arange(start, min(start + CHUNK, 1), dtype=np.int64)
        a_mod = (a & np.int64((1 << 24) - 1)) - np.int64(1 << 24)
        x = (a_mod << np.int64(5)) + np.int64(1 << 28)
        x2 = mul(x, x)
        x3 = mul(x2, x)
        x4 = mul(x2, x2)
        poly = rounding_divide_by_pot(mul(rounding_divide_by_pot(x4, 2) + x3, Q0_31_ONE_THIRD)
                                      + x2, 1)
        q = np.int64(Q0_31_EXP_MINUS_ONE_EIGHTH) + mul(
            np.full_like(a, Q0_31_EXP_MINUS_ONE_EIGHTH), x + poly)
        assert q.min() >= 0 and q.max() <= I32[1]  # exp_quarter's final sum
        e = exp_on_negative_values(a)
        assert e.min() >= 0 and _in32(e)


@pytest.mark.slow
def test_one_over_one_plus_x_stays_within_its_claimed_ranges() -> None:
    for start in range(0, 2**31, CHUNK):
        a = np.arange(start, min(start + CHUNK, 2**31), dtype=np.int64)
        half_den = (a >> np.int64(1)) + np.int64(1 << 30)
        x = np.int64(Q2_29_48_OVER_17) + mul(half_den, Q2_29_NEG_32_OVER_17)
        assert x.min() >= 0 and _in32(x)
        for _ in range(3):
            t = np.int64(1 << 29) - mul(half_den, x)
            assert _in32(t)
            x = x + saturating_rounding_multiply_by_pot(mul(x, t), 2)
            assert x.min() >= 0 and _in32(x)
