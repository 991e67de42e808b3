"""Generic grid search: lowest loss, first on ties, skipped candidates."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib.grid import grid_search
from refq.errors import SpecError


class _Round:
    def __init__(self, step: float) -> None:
        if step <= 0:
            raise SpecError("step")
        self.step = step

    def fake_quant(self, x: np.ndarray) -> np.ndarray:
        return np.rint(x / self.step) * self.step


def test_grid_search_first_on_ties_and_skips() -> None:
    x = np.array([0.0, 1.0, 2.0, 4.0])
    r = grid_search(x, _Round, [-1.0, 3.0, 1.0, 0.5, 2.0])
    assert r.losses[0] is None
    assert r.index == 2 and r.param == 1.0 and r.loss == 0.0  # 1.0 and 0.5 and 2.0 tie at 0
    assert isinstance(r.best, _Round)
    rec = r.record()
    assert rec["index"] == 2 and rec["losses"][0] is None
    brute = [np.mean((x - np.rint(x / s) * s) ** 2) for s in (3.0, 1.0, 0.5, 2.0)]
    assert rec["losses"][1:] == pytest.approx(brute)
    with pytest.raises(SpecError):
        grid_search(x, _Round, [-1.0])
    with pytest.raises(SpecError):
        grid_search(x, _Round, [])
    out = grid_search(x, _Round, [3.0, 1.5], output=lambda v: v.sum(keepdims=True))
    assert out.losses == pytest.approx([(7.0 - 6.0) ** 2, (7.0 - 7.5) ** 2])
