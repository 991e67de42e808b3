"""round_shift / round_div against the Fraction oracle, over the full int64 range."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refq.errors import RangeError, SpecError
from refq.intmath import ROUNDINGS, round_div, round_shift

from .oracle import round_rational

I64 = st.integers(-(2**63), 2**63 - 1)
rounding = st.sampled_from(ROUNDINGS)


@given(x=I64, shift=st.integers(0, 63), mode=rounding)
@example(x=5, shift=1, mode="half_even")  # 2.5 → 2
@example(x=7, shift=1, mode="half_even")  # 3.5 → 4
@example(x=-5, shift=1, mode="half_even")
@example(x=-5, shift=1, mode="half_away")  # -2.5 → -3
@example(x=-5, shift=1, mode="half_up")  # -2.5 → -2
@example(x=-5, shift=1, mode="trunc")
@example(x=-(2**63), shift=63, mode="half_even")
@example(x=2**63 - 1, shift=63, mode="ceil")
@example(x=2**63 - 1, shift=0, mode="half_away")
@example(x=-(2**62), shift=63, mode="half_away")  # exactly -0.5
@example(x=2**62, shift=63, mode="half_even")  # exactly +0.5
def test_round_shift_matches_oracle(x: int, shift: int, mode: str) -> None:
    got = round_shift(x, shift, mode)  # type: ignore[arg-type]
    assert got.dtype == np.int64
    assert int(got) == round_rational(x, 1 << shift, mode)


@given(a=I64, b=I64.filter(lambda v: v != 0), mode=rounding)
@example(a=5, b=2, mode="half_even")
@example(a=-5, b=2, mode="half_away")
@example(a=5, b=-2, mode="half_away")
@example(a=-(2**63), b=2**63 - 1, mode="half_even")
@example(a=2**63 - 1, b=2, mode="half_up")
@example(a=-(2**63), b=3, mode="trunc")
@example(a=7, b=-(2**63) + 1, mode="ceil")
def test_round_div_matches_oracle(a: int, b: int, mode: str) -> None:
    if (a == -(2**63) and b < 0) or b == -(2**63):
        with pytest.raises(RangeError):
            round_div(a, b, mode)  # type: ignore[arg-type]
        return
    assert int(round_div(a, b, mode)) == round_rational(a, b, mode)  # type: ignore[arg-type]


@given(
    xs=st.lists(I64, min_size=1, max_size=40),
    shift=st.integers(0, 63),
    mode=rounding,
)
def test_round_shift_vectorized_equals_scalar(xs: list[int], shift: int, mode: str) -> None:
    got = round_shift(np.array(xs, dtype=np.int64), shift, mode)  # type: ignore[arg-type]
    want = np.array([round_rational(x, 1 << shift, mode) for x in xs], dtype=np.int64)
    np.testing.assert_array_equal(got, want, strict=True)


@given(xs=st.lists(st.tuples(I64, st.integers(0, 63)), min_size=1, max_size=30), mode=rounding)
def test_round_shift_per_element_shifts(xs: list[tuple[int, int]], mode: str) -> None:
    x = np.array([v for v, _ in xs], dtype=np.int64)
    s = np.array([k for _, k in xs], dtype=np.int64)
    want = np.array([round_rational(v, 1 << k, mode) for v, k in xs], dtype=np.int64)
    np.testing.assert_array_equal(round_shift(x, s, mode), want, strict=True)  # type: ignore[arg-type]


def test_round_shift_monotone_in_x() -> None:
    x = np.arange(-1000, 1000, dtype=np.int64)
    for mode in ROUNDINGS:
        for s in (0, 1, 3, 7):
            assert (np.diff(round_shift(x, s, mode)) >= 0).all()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: round_shift(1, -1, "floor"), "shift"),
        (lambda: round_shift(1, 64, "floor"), "shift"),
        (lambda: round_shift(np.array([1.5]), 1, "floor"), "x"),
        (lambda: round_shift(np.array([True]), 1, "floor"), "bool"),
        (lambda: round_shift(1, 1, "nearest"), "rounding"),
        (lambda: round_div(1.0, 2, "floor"), "a"),
        (lambda: round_div(1, np.array([1.0]), "floor"), "b"),
    ],
)
def test_bad_arguments_raise_spec_error(call: object, needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        call()  # type: ignore[operator]


def test_division_by_zero_raises() -> None:
    with pytest.raises(RangeError, match="zero"):
        round_div(np.array([1, 2]), np.array([1, 0]), "floor")
