"""Observers against NumPy oracles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refq.calib import EMAObserver, absmax, minmax, percentile
from refq.errors import SpecError

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
arrays = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=7),
                    elements=finite)


@settings(max_examples=60)
@given(arrays, st.floats(0.0, 1.0))
def test_percentile_numpy_method_equals_numpy_linear(x: np.ndarray, p: float) -> None:
    assert percentile(x, p, method="numpy") == np.quantile(x, p)
    ax = x.ndim - 1
    want = np.quantile(np.moveaxis(x, ax, 0).reshape(x.shape[ax], -1), p, axis=1)
    np.testing.assert_array_equal(percentile(x, p, axis=ax, method="numpy"), want, strict=True)


@settings(max_examples=60)
@given(arrays, st.floats(0.0, 1.0))
def test_percentile_default_is_within_an_ulp_of_numpy(x: np.ndarray, p: float) -> None:
    """torch's one rounding and numpy's two can differ, by one unit in the last place."""
    got, want = float(percentile(x, p)), float(np.quantile(x, p))
    assert abs(got - want) <= 2 * np.spacing(max(abs(got), abs(want), 1e-300))


@pytest.mark.parametrize("p", [0.97, 0.999, 0.9999, 0.99999, 0.001])
def test_percentile_paper_values(p: float) -> None:
    x = np.random.default_rng(1).standard_normal(10007)
    assert percentile(x, p, method="numpy") == np.quantile(x, p, method="linear")


def test_percentile_rejects_percent_scale() -> None:
    with pytest.raises(SpecError, match="fraction"):
        percentile(np.arange(10.0), 99.9)


@settings(max_examples=40)
@given(arrays)
def test_minmax_per_tensor_and_axis(x: np.ndarray) -> None:
    lo, hi = minmax(x)
    assert lo == x.min() and hi == x.max()
    for ax in range(x.ndim):
        other = tuple(i for i in range(x.ndim) if i != ax)
        lo, hi = minmax(x, axis=ax)
        np.testing.assert_array_equal(lo, x.min(axis=other), strict=True)
        np.testing.assert_array_equal(hi, x.max(axis=other), strict=True)
        np.testing.assert_array_equal(absmax(x, ax), np.abs(x).max(axis=other), strict=True)


def test_ema_observer() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((4, 6)) * (i + 1) for i in range(5)]
    ob = EMAObserver(momentum=0.8, axis=1)
    lo, hi = batches[0].min(axis=0), batches[0].max(axis=0)
    for k, b in enumerate(batches):
        ob.update(b)
        if k:
            lo = 0.8 * lo + 0.2 * b.min(axis=0)
            hi = 0.8 * hi + 0.2 * b.max(axis=0)
    np.testing.assert_allclose(ob.min, lo, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ob.max, hi, rtol=0, atol=1e-12)
    assert ob.count == 5
    with pytest.raises(SpecError):
        EMAObserver(momentum=1.0)
    with pytest.raises(SpecError, match="no batch"):
        _ = EMAObserver().min


def test_observers_reject_bad_input() -> None:
    with pytest.raises(SpecError):
        minmax(np.array([1.0, np.nan]))
    with pytest.raises(SpecError):
        minmax(np.zeros((0,)))
    with pytest.raises(SpecError):
        minmax(np.zeros((2, 2)), axis=2)
