"""Metrics against direct formulas."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib import cosine, cosine_distance, mse, restrict, weighted_mse
from refq.errors import SpecError


def test_mse_and_cosine() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 5, 7)), rng.standard_normal((3, 5, 7))
    assert mse(a, b) == pytest.approx(sum((u - v) ** 2 for u, v in zip(a.ravel(), b.ravel(),
                                                                         strict=True)) / a.size)
    rows = [float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))
            for u, v in zip(a.reshape(-1, 7), b.reshape(-1, 7), strict=True)]
    assert cosine(a, b) == pytest.approx(sum(rows) / len(rows), rel=1e-12)
    assert cosine_distance(a, b) == pytest.approx(1 - sum(rows) / len(rows), rel=1e-12)
    flat = float(a.ravel() @ b.ravel() / np.linalg.norm(a) / np.linalg.norm(b))
    assert cosine(a, b, axis=None) == pytest.approx(flat, rel=1e-12)
    assert cosine(a, a) == pytest.approx(1.0)
    assert cosine(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(SpecError, match="shapes"):
        mse(a, b[:1])


def test_weighted_mse_and_restrict() -> None:
    rng = np.random.default_rng(1)
    a, b, g = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    m = weighted_mse(g)
    assert m(a, b) == pytest.approx(np.mean((g * (a - b)) ** 2))
    h = restrict(m, (slice(None), 1))
    assert h(a[:, 1], b[:, 1]) == pytest.approx(np.mean((g[:, 1] * (a[:, 1] - b[:, 1])) ** 2))
    assert restrict(mse, (slice(None), 1)) is mse
    with pytest.raises(SpecError, match="broadcast"):
        weighted_mse(np.ones(5))(a, b)
