"""torch.quantile's arithmetic, reproduced: the single-rounding interpolation checked
against exact rationals (no torch needed) and against torch.quantile itself; the
np.percentile fallback of the official codes above 2^24 elements."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from refq.calib import percentile
from refq.calib import quantile as qmod
from refq.calib.quantile import fma32, fma64, official_quantile, round_ratio_f32
from refq.errors import SpecError

from ..torch_oracle import needs_torch

f64 = st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False)
f32 = st.floats(-2.0**50, 2.0**50, allow_nan=False, allow_infinity=False, width=32)


def _nearest(exact: Fraction, cands: list[float]) -> float:
    """The candidate nearest to ``exact``; on a tie the one with an even significand."""
    best = min(cands, key=lambda c: (abs(Fraction(c) - exact),
                                     int(np.float32(c).view(np.uint32)) & 1))
    return best


@settings(max_examples=300)
@given(f64, f64, f64)
@example(0.5, 3.0, 1.0)  # exact
@example(1 / 3, 1e-16, 1.0)  # w·d below an ulp of the base
def test_fma64_is_one_correct_rounding(a: float, b: float, c: float) -> None:
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    assert fma64(a, b, c) == float(exact)  # float(Fraction) rounds correctly, half even


@settings(max_examples=300)
@given(f32, f32, f32)
@example(1.0, 2.0**-24, 1.0)  # 1 + 2^-24: a float32 tie, rounds to even (1.0)
@example(1.0, 3 * 2.0**-24, 1.0)  # 1 + 3·2^-24: a tie, rounds to even (1 + 2^-22)
@example(1.0, 2.0**-24 + 2.0**-60, 1.0)  # just above the tie: rounds up
def test_fma32_is_one_correct_rounding(a: float, b: float, c: float) -> None:
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    r = fma32(a, b, c)
    assert float(np.float32(r)) == r
    r32 = np.float32(r)
    nb = [float(np.nextafter(r32, np.float32(s))) for s in (-np.inf, np.inf)]
    assert _nearest(exact, [r, *nb]) == r


def test_round_ratio_f32_ties_and_subnormals() -> None:
    assert round_ratio_f32(2**24 + 1, 1) == 2.0**24  # tie to even
    assert round_ratio_f32(2**24 + 3, 1) == 2.0**24 + 4
    assert round_ratio_f32(-(2**24 + 3), 1) == -(2.0**24 + 4)
    tiny = 2**-149  # smallest float32 subnormal
    assert round_ratio_f32(3, 2**150) == 2 * tiny  # 1.5·tiny: a tie, to even (2·tiny)
    assert round_ratio_f32(1, 2**151) == 0.0  # a quarter of the smallest subnormal


def test_interpolation_rounds_once() -> None:
    """The issue's example: x = default_rng(30).standard_normal(384); numpy's two roundings
    and torch's one give different 0.999-quantiles, and so different 4-bit scales."""
    x = np.random.default_rng(30).standard_normal(384)
    srt = np.sort(x)
    h = 0.999 * 383
    i = math.floor(h)
    w = h - i
    lo, hi = float(srt[i]), float(srt[i + 1])
    exact = Fraction(w - 1) * Fraction(hi - lo) + Fraction(hi)  # w ≥ 0.5: from above
    assert float(percentile(x, 0.999)) == float(exact)
    assert float(percentile(x, 0.999, method="numpy")) == np.quantile(x, 0.999)


@pytest.mark.parametrize("arith", ["float64", "float32"])
def test_fallback_above_the_torch_limit(monkeypatch: pytest.MonkeyPatch, arith: str) -> None:
    """Above the limit: float32(np.percentile(copy in arith's dtype, p·100)), as RepQ-ViT /
    I&S-ViT's except branch (the limit lowered here to keep the test fast; the real one is
    checked against torch in the slow test)."""
    monkeypatch.setattr(qmod, "TORCH_NUMEL_LIMIT", 100)
    x = np.random.default_rng(2).standard_normal(101)
    dt = np.float64 if arith == "float64" else np.float32
    for p in (0.999, 1.0 - 0.999):
        want = float(np.float32(np.percentile(x.astype(dt), p * 100)))
        assert official_quantile(x, p, arith) == want  # type: ignore[arg-type]
    # at the limit itself the torch arithmetic is used
    srt = np.sort(x[:100].astype(dt)).astype(np.float64)[None, :]
    assert official_quantile(x[:100], 0.999, arith) == float(  # type: ignore[arg-type]
        qmod.torch_quantile_sorted(srt, 0.999, arith)[0])  # type: ignore[arg-type]


def test_bad_arguments() -> None:
    with pytest.raises(SpecError, match="arith"):
        percentile(np.arange(5.0), 0.5, arith="float16")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="method"):
        percentile(np.arange(5.0), 0.5, method="scipy")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="float64 only"):
        percentile(np.arange(5.0), 0.5, method="numpy", arith="float32")


@pytest.mark.parametrize("arith", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.torch
@needs_torch
def test_equals_torch_quantile(seed: int, arith: str) -> None:
    import torch

    rng = np.random.default_rng(seed)
    dt = np.float64 if arith == "float64" else np.float32
    n = int(rng.integers(2, 5000))
    x = (rng.standard_normal(n) * rng.uniform(0.01, 10)).astype(dt)
    for p in (0.97, 0.98, 0.99, 0.995, 0.9995, 0.9997, 0.9999, 0.99995, 0.99999, 0.5):
        for q in (p, 1.0 - p):
            want = torch.quantile(torch.from_numpy(x), q).item()
            assert float(percentile(x.astype(np.float64), q,
                                    arith=arith)) == want  # type: ignore[arg-type]
    rows = x[: (n // 4) * 4].reshape(-1, 4).T.astype(np.float64)  # 4 channels on axis 0
    got = percentile(rows, 0.999, axis=0, arith=arith)  # type: ignore[arg-type]
    want_rows = [torch.quantile(torch.from_numpy(r.astype(dt)), 0.999).item() for r in rows]
    np.testing.assert_array_equal(got, np.array(want_rows), strict=True)


@pytest.mark.slow
@pytest.mark.torch
@needs_torch
def test_torch_refuses_above_two_to_the_24() -> None:
    """The limit itself, on torch: 2^24 elements work, one more raises."""
    import torch

    torch.quantile(torch.zeros(qmod.TORCH_NUMEL_LIMIT), 0.5)
    with pytest.raises(RuntimeError, match="too large"):
        torch.quantile(torch.zeros(qmod.TORCH_NUMEL_LIMIT + 1), 0.5)
