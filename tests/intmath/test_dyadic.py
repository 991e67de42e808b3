"""Dyadic requantization (I-ViT / HAWQ) against the oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refq.errors import RangeError, SpecError
from refq.intmath import (
    ROUNDINGS,
    IntFormat,
    dyadic_from_real,
    dyadic_requantize,
    dyadic_requantize_saturate,
    saturate,
)

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


def _oracle_saturate(xs: list[int], bs: list[int], cs: list[int], mode: str, zp: int,
                     lo: int, hi: int) -> list[int]:
    n = len(bs)
    return [min(hi, max(lo, round_rational(x * bs[i % n], 1 << cs[i % n], mode) + zp))
            for i, x in enumerate(xs)]


@given(
    xs=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=12),
    chan=st.lists(st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 63)), min_size=1,
                  max_size=3),
    mode=st.sampled_from(ROUNDINGS),
    zp=st.integers(-(2**20), 2**20),
    bits=st.sampled_from([8, 16, 32, 64]),
    signed=st.booleans(),
    narrow_x=st.booleans(),
)
@example(xs=[3, -3, 5, -5, 1, -1], chan=[(1, 1)], mode="half_even", zp=0, bits=8, signed=True,
         narrow_x=False)  # ties at .5 to even
@example(xs=[3, -3, 5, -5, 1, -1], chan=[(1, 1)], mode="half_away", zp=7, bits=8, signed=True,
         narrow_x=True)  # ties away from zero, zero point
@example(xs=[-128, 127, 2**31 - 1, -(2**31)], chan=[(2**31 - 1, 62)], mode="half_up", zp=-3,
         bits=8, signed=True, narrow_x=True)  # largest fused shift, dtype bound
@example(xs=[2**40, -(2**40)], chan=[(2**31 - 1, 63)], mode="half_even", zp=0, bits=64,
         signed=True, narrow_x=False)  # shift 63: unfused path
@example(xs=[1000, -1000, 0], chan=[(3, 0), (5, 2)], mode="trunc", zp=200, bits=8,
         signed=False, narrow_x=False)  # per-channel shifts 0 and 2, saturation of uint8
@example(xs=[2**40] * 2, chan=[(2**30, 1)], mode="ceil", zp=2**20, bits=64, signed=True,
         narrow_x=False)  # bound proof fails: unfused path
def test_dyadic_requantize_saturate_matches_oracle(
    xs: list[int], chan: list[tuple[int, int]], mode: str, zp: int, bits: int, signed: bool,
    narrow_x: bool,
) -> None:
    fmt = IntFormat(bits, signed)
    if narrow_x:
        xs = [max(-(2**31), min(2**31 - 1, v)) for v in xs]
    n = len(chan)
    xs = xs + [0] * (-len(xs) % n)  # whole rows of n channels
    bs, cs = [b for b, _ in chan], [c for _, c in chan]
    zp = max(fmt.min, min(fmt.max, zp))
    x = np.array(xs, dtype=np.int32 if narrow_x else np.int64).reshape(-1, n)
    want = _oracle_saturate(xs, bs, cs, mode, zp, fmt.min, fmt.max)
    try:
        got = dyadic_requantize_saturate(x, np.array(bs), np.array(cs), mode, zp, fmt)  # type: ignore[arg-type]
    except RangeError:  # only where some exact product x·b leaves int64
        assert any(abs(v * bs[i % n]) >= 2**63 for i, v in enumerate(xs))
        return
    np.testing.assert_array_equal(got.ravel(), np.array(want, dtype=np.int64), strict=True)
    # the unfused composition gives the same integers
    if all(abs(v * bs[i % n]) < 2**63 for i, v in enumerate(xs)):
        ref = saturate(dyadic_requantize(x.astype(np.int64), np.array(bs), np.array(cs), mode)  # type: ignore[arg-type]
                       + np.int64(zp), fmt) if abs(zp) < 2**40 else None
        if ref is not None:
            np.testing.assert_array_equal(got, ref, strict=True)


def test_dyadic_requantize_saturate_fused_and_fallback_agree() -> None:
    """Large zero points take the unfused path: still exact, and no int64 wrap of q + zp."""
    x = np.array([[2**40, -(2**40), 7]], dtype=np.int64).T
    fmt = IntFormat(64, True)
    got = dyadic_requantize_saturate(x, 2**20, 1, "half_even", 2**62, fmt)
    want = [min(2**63 - 1, round_rational(v * 2**20, 2, "half_even") + 2**62)
            for v in (2**40, -(2**40), 7)]
    np.testing.assert_array_equal(got.ravel(), np.array(want, dtype=np.int64), strict=True)
    with pytest.raises(SpecError):
        dyadic_requantize_saturate(x, -1, 1, "half_even", 0, fmt)
    with pytest.raises(RangeError, match="overflows int64"):
        dyadic_requantize_saturate(x, 2**31 - 1, 63, "half_even", 0, fmt)


@pytest.mark.parametrize("mode", ROUNDINGS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_dyadic_requantize_saturate_blocks_match_unfused(mode: str, per_channel: bool) -> None:
    """Arrays of many cache blocks (and a last partial one) give the unfused integers; a
    value in the LAST block that breaks the bound proof still gives them (unfused path)."""
    rng = np.random.default_rng(7)
    x = rng.integers(-(2**31), 2**31, (301, 384), dtype=np.int64)
    b = rng.integers(0, 2**31, 384) if per_channel else np.int64(1_234_567_891)
    c = rng.integers(20, 40, 384) if per_channel else np.int64(37)
    fmt = IntFormat(8, False)
    for xs in (x, np.concatenate([x, np.full((1, 384), 2**32, dtype=np.int64)])):
        want = saturate(dyadic_requantize(xs, b, c, mode) + np.int64(100), fmt)  # type: ignore[arg-type]
        got = dyadic_requantize_saturate(xs, b, c, mode, 100, fmt)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, want, strict=True)
    got32 = dyadic_requantize_saturate(x.astype(np.int32), b, c, mode, -5, IntFormat(16, True))  # type: ignore[arg-type]
    want32 = saturate(dyadic_requantize(x, b, c, mode) - np.int64(5), IntFormat(16, True))  # type: ignore[arg-type]
    np.testing.assert_array_equal(got32, want32, strict=True)


def test_dyadic_requantize_saturate_uses_noted_bounds_only_when_they_prove_it() -> None:
    """A bound noted by the caller (refq.program.run) replaces the block scans: same
    integers; a noted range too wide for the proof (int64) still scans and still raises."""
    from refq.intmath.formats import checked_arrays

    rng = np.random.default_rng(5)
    x = rng.integers(-(2**31), 2**31, (64, 384), dtype=np.int64)
    b, c, fmt = np.int64(2**30 + 12345), np.int64(35), IntFormat(8, True)
    want = dyadic_requantize_saturate(x, b, c, "half_even", 3, fmt)
    with checked_arrays() as checked:
        checked.note(x, IntFormat(32, True))
        got = dyadic_requantize_saturate(x, b, c, "half_even", 3, fmt)
        np.testing.assert_array_equal(got, want, strict=True)
        big = x.copy()
        big[-1, -1] = 2**40  # x·b >= 2^63 in the last block only
        checked.note(big, IntFormat(64, True))
        with pytest.raises(RangeError, match="overflows int64"):
            dyadic_requantize_saturate(big, b, c, "half_even", 3, fmt)


@given(
    b_odd=st.integers(0, 2**20).map(lambda v: 2 * v + 1),
    e=st.integers(0, 12),
    c=st.integers(1, 50),
    mode=st.sampled_from(ROUNDINGS),
    zp=st.integers(-300, 300),
    odd=st.lists(st.integers(-5, 5), min_size=1, max_size=8),
    below=st.booleans(),
    to_int32=st.booleans(),
)
@example(b_odd=3, e=2, c=6, mode="half_even", zp=0, odd=[1, -1, 3, -3], below=False,
         to_int32=True)  # ties at exactly the tie limit 2^(c-1-e): to even
@example(b_odd=3, e=2, c=6, mode="half_away", zp=-7, odd=[1, -1, 3, -3], below=True,
         to_int32=False)  # just below the limit: no ties, the nudge is dropped
@example(b_odd=1, e=0, c=40, mode="half_even", zp=5, odd=[-5, 5], below=False,
         to_int32=True)  # shift >= 32: the uint64 offset 2^(63-c) taken off modulo 2^32
def test_dyadic_rows_ties_at_and_below_the_tie_limit(
    b_odd: int, e: int, c: int, mode: str, zp: int, odd: list[int], below: bool,
    to_int32: bool,
) -> None:
    """DyadicRows.apply against the oracle on x = multiples of the tie limit 2^(c-1-e)
    (ties for every odd multiple: the value-dependent nudge is needed) and on x just
    below it (no ties: the nudge is dropped), with a scanned and a caller-given bound,
    into int64 and into int32."""
    from refq.intmath.dyadic import dyadic_rows

    b = b_odd << e
    if b >= 2**31:
        return
    kern = dyadic_rows(np.int64(b), np.int64(c), mode, zp, -(2**31), 2**31 - 1, 1)  # type: ignore[arg-type]
    assert kern is not None
    step = 1 << max(c - 1 - e, 0)
    xs = [k * step - (1 if below and k > 0 else -1 if below and k < 0 else 0) for k in odd]
    xs = [v for v in xs if abs(v) <= min(kern.xlim, 2**31 - 1)] or [0]
    if c - 1 - e >= 0:  # the limit is exactly 2^(c-1-e): ties from there on
        assert kern.tie_free(step - 1) and not kern.tie_free(step)
    x = np.array(xs, dtype=np.int64).reshape(-1, 1)
    want = np.array(_oracle_saturate(xs, [b], [c], mode, zp, -(2**31), 2**31 - 1),
                    dtype=np.int64).reshape(-1, 1)
    for xmax in (None, max(abs(v) for v in xs)):
        y, t = np.empty_like(x), np.empty_like(x)
        out = np.empty(x.shape, dtype=np.int32) if to_int32 else None
        got = kern.apply(x, y, t, kern.tile(x.shape[0]), out, xmax)
        np.testing.assert_array_equal(got.astype(np.int64), want)
        assert got.dtype == (np.int32 if to_int32 else np.int64)
