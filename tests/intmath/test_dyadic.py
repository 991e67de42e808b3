"""Dyadic requantization (I-ViT / HAWQ) against the oracle."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refq.errors import RangeError, SpecError
from refq.intmath import ROUNDINGS, dyadic_from_real, dyadic_requantize

from .oracle import dyadic_from_real as oracle_dfr
from .oracle import round_rational


@given(
    real=st.floats(min_value=2.0**-30, max_value=2.0**20),
    bits=st.integers(1, 40),
    mode=st.sampled_from(ROUNDINGS),
)
@example(real=1.0, bits=31, mode="half_even")
@example(real=1.0 - 2.0**-40, bits=31, mode="half_even")  # carry
@example(real=0.75, bits=1, mode="half_even")  # m·2 = 1.5 → 2 → carry
@example(real=0.625, bits=2, mode="half_even")  # m·4 = 2.5 → tie to even 2
def test_dyadic_from_real_matches_oracle(real: float, bits: int, mode: str) -> None:
    want = oracle_dfr(real, bits, mode)
    if want[1] < 0 or want[1] > 63:
        with pytest.raises(SpecError):
            dyadic_from_real(real, bits, mode)  # type: ignore[arg-type]
        return
    b, c = dyadic_from_real(real, bits, mode)  # type: ignore[arg-type]
    assert (b, c) == want
    assert 2 ** (bits - 1) <= b < 2**bits
    assert abs(b / 2**c - real) <= real * 2.0 ** (1 - bits)


@given(
    x=st.integers(-(2**40), 2**40),
    b=st.integers(0, 2**22),
    c=st.integers(0, 63),
    mode=st.sampled_from(ROUNDINGS),
)
@example(x=3, b=1, c=1, mode="half_even")
@example(x=-3, b=1, c=1, mode="half_even")
@example(x=5, b=1, c=1, mode="half_up")
@example(x=-(2**40), b=2**22, c=63, mode="ceil")
def test_dyadic_requantize_matches_oracle(x: int, b: int, c: int, mode: str) -> None:
    got = dyadic_requantize(x, b, c, mode)  # type: ignore[arg-type]
    assert int(got) == round_rational(x * b, 1 << c, mode)


def test_dyadic_requantize_detects_product_overflow() -> None:
    with pytest.raises(RangeError, match="overflows int64"):
        dyadic_requantize(2**40, 2**31, 31)
    with pytest.raises(RangeError, match="overflows int64"):
        dyadic_requantize(-(2**63), 2, 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: dyadic_requantize(1, -1, 1),
        lambda: dyadic_requantize(1, 1, 64),
        lambda: dyadic_requantize(1, 1, -1),
        lambda: dyadic_from_real(-1.0),
        lambda: dyadic_from_real(math.nan),
        lambda: dyadic_from_real(1.0, bits=0),
        lambda: dyadic_from_real(1.0, rounding="banker"),  # type: ignore[arg-type]
        lambda: dyadic_from_real(2.0**40, bits=31),
    ],
)
def test_bad_input(call: object) -> None:
    with pytest.raises(SpecError):
        call()  # type: ignore[operator]
