"""SULQ, TanQ, O-2SF, V-2SF, PTF searches: brute-force choice and beating the start."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib import (
    SULQ_ETAS,
    o2sf_search,
    ptf_alpha_search,
    sulq_eta_search,
    tanq_shape_search,
    v2sf_search,
)
from refq.quant.sulq import ShiftUniformLog2Quantizer
from refq.quant.tan import TanQuantizer
from refq.quant.uniform import UniformQuantizer

from ._data import gelu_acts, ln_inputs, softmax_probs


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def test_sulq_brute_force() -> None:
    x = softmax_probs(np.random.default_rng(0))
    q, rec = sulq_eta_search(x, 4)
    losses = [_mse(x, ShiftUniformLog2Quantizer.from_data(x, 4, e).fake_quant(x))
              for e in SULQ_ETAS]
    assert rec["index"] == int(np.argmin(losses)) and q.eta == SULQ_ETAS[rec["index"]]
    assert rec["losses"] == pytest.approx(losses, rel=1e-12)


def test_tanq_brute_force_and_beats_uniform() -> None:
    x = softmax_probs(np.random.default_rng(1), (1, 1, 197, 197))
    q, rec = tanq_shape_search(x, 4)
    losses = []
    for a in rec["shapes"]:
        try:
            losses.append(_mse(x, TanQuantizer(4, a).fake_quant(x)))
        except Exception:
            losses.append(np.inf)
    assert rec["index"] == int(np.argmin(losses)) and q.shape == rec["shape"]
    uni = UniformQuantizer.from_minmax(0.0, 1.0, 4)
    assert rec["loss"] < _mse(x, uni.fake_quant(x))


def test_o2sf_beats_per_tensor_and_finds_outliers() -> None:
    x = ln_inputs(np.random.default_rng(2))
    q, rec = o2sf_search(x, 4)
    assert set(rec["outliers"]) >= {3, 17}
    assert _mse(x, q.fake_quant(x)) == pytest.approx(rec["loss"], rel=1e-12)
    uni = UniformQuantizer.from_minmax(float(x.min()), float(x.max()), 4)
    assert rec["loss"] < _mse(x, uni.fake_quant(x))
    assert rec["loss"] == min(v for v in rec["losses"] if v is not None)


def test_v2sf_beats_uniform_on_gelu() -> None:
    x = gelu_acts(np.random.default_rng(3))
    q, rec = v2sf_search(x, 4, max_k=3)
    assert rec["threshold"] == pytest.approx((7 + 0.5) * q.scale)
    uni = UniformQuantizer.from_minmax(float(x.min()), float(x.max()), 4)
    assert rec["loss"] < _mse(x, uni.fake_quant(x))
    assert rec["loss"] == min(v for v in rec["losses"] if v is not None)


def test_ptf_quantizer_matches_record() -> None:
    x = ln_inputs(np.random.default_rng(4))
    q, rec = ptf_alpha_search(x, 8)
    assert q.alpha.tolist() == rec["alpha"]
    assert _mse(x, q.fake_quant(x)) == pytest.approx(rec["mse"], rel=1e-9)
    assert rec["alpha"][3] == 3 and rec["alpha"][17] == 3
