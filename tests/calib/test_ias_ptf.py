"""I&S-ViT percentile-MSE init and FQ-ViT PTF search against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib.search_ias import (
    ACT_PERCENTILES,
    WEIGHT_PERCENTILES,
    asym_fake_quant,
    percentile_mse_search,
)
from refq.calib.search_ptf import ptf_search


def _uq(x: np.ndarray, lo: float, hi: float, b: int) -> np.ndarray:
    s = (hi - lo) / (2**b - 1)
    z = round(-lo / s)
    return np.vectorize(lambda v: (min(max(round(v / s) + z, 0), 2**b - 1) - z) * s)(x)


def test_candidate_lists() -> None:
    assert ACT_PERCENTILES == (0.999, 0.9999, 0.99999)
    assert WEIGHT_PERCENTILES == (0.97, 0.98, 0.99, 0.995, 0.9995, 0.9997, 0.9999, 0.99995,
                                  0.99999)


def test_percentile_mse_brute_force() -> None:
    x = np.random.default_rng(0).standard_t(3, size=4000)
    r = percentile_mse_search(x, 4, WEIGHT_PERCENTILES)
    losses = [np.mean((x - _uq(x, np.quantile(x, 1 - p), np.quantile(x, p), 4)) ** 2)
              for p in WEIGHT_PERCENTILES]
    assert r["index"] == int(np.argmin(losses))
    assert r["mse"] == pytest.approx(min(losses), rel=1e-12)
    np.testing.assert_allclose(r["mse_all"], losses, rtol=1e-12)


def test_percentile_first_on_ties() -> None:
    # 10 distinct values: every p >= 0.999 gives the same (min, max) -> identical MSE
    x = np.linspace(-1, 1, 10)
    r = percentile_mse_search(x, 4, (0.9999, 0.999, 0.99999))
    assert len(set(r["mse_all"])) > 1 or r["index"] == 0
    x = np.repeat(np.array([-1.0, 1.0]), 50)  # quantiles of all p equal -> exact tie
    r = percentile_mse_search(x, 4, (0.99999, 0.999, 0.9999))
    assert r["mse_all"][0] == r["mse_all"][1] == r["mse_all"][2]
    assert r["index"] == 0 and r["p"] == 0.99999


def test_percentile_per_channel() -> None:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 500)) * np.array([[1.0], [10.0], [0.1]])
    r = percentile_mse_search(w, 3, WEIGHT_PERCENTILES, axis=0)
    for c in range(3):
        rc = percentile_mse_search(w[c], 3, WEIGHT_PERCENTILES)
        assert r["p"][c] == rc["p"] and r["scale"][c] == rc["scale"]


def test_ptf_brute_force() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 16))
    x[:, 3] *= 40
    x[:, 7] *= 8
    r = ptf_search(x, bits=8)
    s8 = (x.max() - x.min()) / 255
    z = round(-x.min() / s8)
    for c in range(16):
        losses = [np.mean((x[:, c] - asym_fake_quant(x[:, c], s8 / 8 * 2**a, z, 8)) ** 2)
                  for a in range(4)]
        assert r["alpha"][c] == int(np.argmin(losses))
    assert r["alpha"][3] == 3 and r["alpha"][0] == 0
    assert r["mse"] < r["mse_layerwise"]


def test_percentile_mse_init_quantizer_matches_search() -> None:
    from refq.calib.search_ias import percentile_mse_init

    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 300)) + 0.3
    q, rec = percentile_mse_init(x, 4)
    assert rec["p"] in ACT_PERCENTILES and q.to_dict()["signed"] is False
    fq = q.fake_quant(x)
    assert np.mean((x - fq) ** 2) == pytest.approx(rec["mse"], rel=1e-12)
    np.testing.assert_array_equal(fq, _uq(x, np.quantile(x, 1 - rec["p"]),
                                          np.quantile(x, rec["p"]), 4))
    qw, recw = percentile_mse_init(x, 3, kind="weight", axis=0)
    assert len(recw["p"]) == 4 and qw.axis == 0
    for c in range(4):
        assert np.mean((x[c] - qw.fake_quant(x)[c]) ** 2) == pytest.approx(recw["mse"][c])
