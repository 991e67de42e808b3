"""UniformQuantizer: codes, levels, integer form, serialisation, bad input.

Oracles: NumPy's rint (half-even) and an exact Fraction rounding of the float64 quotient
written here, never the code under test."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refq.errors import RangeError, SpecError
from refq.quant import UniformQuantizer, quantizer_from_dict


def _round_frac(v: Fraction, mode: str) -> int:
    f = math.floor(v)
    d = v - f
    if mode == "floor":
        return f
    if mode == "ceil":
        return f + (d != 0)
    if mode == "trunc":
        return f + (d != 0 and v < 0)
    if d > Fraction(1, 2):
        return f + 1
    if d < Fraction(1, 2):
        return f
    return {"half_up": f + 1, "half_away": f + (v > 0), "half_even": f + (f % 2)}[mode]


ROUNDINGS = ["half_even", "half_away", "half_up", "floor", "ceil", "trunc"]


@given(
    x=st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=40),
    scale=st.floats(1e-4, 1e2),
    bits=st.integers(2, 16),
    signed=st.booleans(),
    narrow=st.booleans(),
    rounding=st.sampled_from(ROUNDINGS),
    zp=st.integers(-50, 50),
)
@example(x=[0.5, 1.5, -0.5, -2.5, 2.5], scale=1.0, bits=8, signed=True, narrow=False,
         rounding="half_even", zp=0)
def test_codes_match_exact_oracle(
    x: list[float], scale: float, bits: int, signed: bool, narrow: bool, rounding: str, zp: int
) -> None:
    q = UniformQuantizer(scale, bits, zp, signed=signed, narrow=narrow, rounding=rounding)  # type: ignore[arg-type]
    lo, hi = q.code_range()
    exp = [min(max(_round_frac(Fraction(xv / scale), rounding) + zp, lo), hi) for xv in x]
    got = q.quantize(np.array(x))
    np.testing.assert_array_equal(got, np.array(exp, dtype=np.int64), strict=True)
    assert lo == (-(2 ** (bits - 1)) + (1 if narrow else 0) if signed else 0)
    assert hi == (2 ** (bits - 1) - 1 if signed else 2**bits - 1)


def test_half_even_matches_numpy_rint() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 3, 5000), np.arange(-20, 20) * 0.5])
    q = UniformQuantizer(0.5, 8, 3)
    exp = np.clip(np.rint(x / 0.5) + 3, -128, 127).astype(np.int64)
    np.testing.assert_array_equal(q.quantize(x), exp, strict=True)
    np.testing.assert_array_equal(q.dequantize(exp), (exp - 3) * 0.5, strict=True)


def test_per_channel_and_group() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (4, 6, 3))
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    q = UniformQuantizer(s, 4, 0, axis=1)
    exp = np.clip(np.rint(x / s[None, :, None]), -8, 7).astype(np.int64)
    np.testing.assert_array_equal(q.quantize(x), exp, strict=True)
    assert q.levels().shape == (6, 16)  # type: ignore[union-attr]
    sg = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])  # (4, 6/3)
    g = UniformQuantizer(sg, 4, 0, axis=1, group_size=3)
    w = rng.normal(0, 2, (4, 6))
    exp = np.clip(np.rint(w / np.repeat(sg, 3, axis=1)), -8, 7).astype(np.int64)
    np.testing.assert_array_equal(g.quantize(w), exp, strict=True)


@given(
    scale=st.floats(1e-3, 10.0),
    in_scale=st.floats(1e-3, 10.0),
    in_zp=st.integers(-128, 127),
    zp=st.integers(-8, 8),
    bits=st.integers(2, 8),
    rounding=st.sampled_from(ROUNDINGS),
)
@example(scale=1.0, in_scale=0.5, in_zp=0, zp=0, bits=8, rounding="half_even")
@example(scale=0.25, in_scale=0.125, in_zp=-128, zp=1, bits=4, rounding="half_away")
def test_quantize_int_equals_quantize(
    scale: float, in_scale: float, in_zp: int, zp: int, bits: int, rounding: str
) -> None:
    q = UniformQuantizer(scale, bits, zp, rounding=rounding)  # type: ignore[arg-type]
    xi = np.arange(-1024, 1024, dtype=np.int64)
    got = q.quantize_int(xi, in_scale, in_zp)
    exp = q.quantize(in_scale * (xi - in_zp).astype(np.float64))
    np.testing.assert_array_equal(got, exp, strict=True)
    t = q.int_thresholds(in_scale, in_zp)
    assert t.shape == (2**bits - 1,)
    assert bool((np.diff(t) >= 0).all())


def test_int_thresholds_known_values() -> None:
    # scale 1, input scale 1: x/1 rounds half-even; boundary between 0 and 1 is x = 1
    # (0.5 rounds to 0), between 1 and 2 is x = 2 (1.5 -> 2) on an integer grid
    q = UniformQuantizer(2.0, 4, 0)
    t = q.int_thresholds(1.0, 0)
    # codes -8..7; x/2: boundary (k, k+1) at x = 2k+1 (tie) -> even side decides
    exp = [2 * k + 1 + (1 if k % 2 == 0 else 0) for k in range(-8, 7)]
    np.testing.assert_array_equal(t, np.array(exp, dtype=np.int64), strict=True)


def test_from_minmax_ias_formula() -> None:
    q = UniformQuantizer.from_minmax(-0.3, 1.2, 8)
    s = (1.2 - -0.3) / 255
    assert float(q.scale) == s
    assert int(q.zero_point) == round(0.3 / s)
    sym = UniformQuantizer.from_absmax(3.0, 8, denom=2**7 - 0.5)
    assert float(sym.scale) == 3.0 / 127.5


def test_float_zero_point_is_fake_quant_only() -> None:
    q = UniformQuantizer.from_minmax(-0.37, 1.2, 4, float_zero_point=True)
    assert not q.integer_exact
    x = np.linspace(-1, 2, 50)
    s, z = float(q.scale), float(q.zero_point)
    exp = (np.clip(np.rint(x / s) + z, 0, 15) - z) * s
    np.testing.assert_array_equal(q.fake_quant(x), exp, strict=True)
    for fn in (lambda: q.quantize(x), lambda: q.int_thresholds(0.1), q.levels):
        with pytest.raises(SpecError, match="integer_exact=False"):
            fn()
    r = quantizer_from_dict(json.loads(json.dumps(q.to_dict())))
    np.testing.assert_array_equal(r.fake_quant(x), q.fake_quant(x), strict=True)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: UniformQuantizer(0.0, 8),
        lambda: UniformQuantizer(-1.0, 8),
        lambda: UniformQuantizer(float("nan"), 8),
        lambda: UniformQuantizer(1.0, 1),
        lambda: UniformQuantizer(1.0, 17),
        lambda: UniformQuantizer(1.0, 8, 0.5),
        lambda: UniformQuantizer(1.0, 8, rounding="nearest"),  # type: ignore[arg-type]
        lambda: UniformQuantizer([1.0, 2.0], 8),
        lambda: UniformQuantizer(1.0, 8).quantize([1.0, float("nan")]),
        lambda: UniformQuantizer(1.0, 8).quantize([float("inf")]),
        lambda: UniformQuantizer(1.0, 8).quantize([]),
        lambda: UniformQuantizer(1.0, 8).int_thresholds(0.0),
        lambda: UniformQuantizer([1.0, 2.0], 8, axis=0).quantize(np.ones((3, 2))),
        lambda: quantizer_from_dict({"kind": "uniform", "version": 2}),
        lambda: quantizer_from_dict({"kind": "nope", "version": 1}),
        lambda: quantizer_from_dict([1, 2]),
        lambda: UniformQuantizer.from_dict({**UniformQuantizer(1.0, 8).to_dict(), "x": 1}),
    ],
)
def test_bad_input_spec_error(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError):
        bad()


def test_dequantize_out_of_range() -> None:
    with pytest.raises(RangeError, match="code_range"):
        UniformQuantizer(1.0, 4).dequantize([7, 8])
    with pytest.raises(SpecError):
        UniformQuantizer(1.0, 4).dequantize([1.5])
