"""PTQ4ViT search: candidate grid exactly as specified, choice checked by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib import mse
from refq.calib.search_ptq4vit import (
    gelu_twin_fake_quant,
    ptq4vit_candidates,
    search_linear_scales,
    search_matmul_scales,
    sym_fake_quant,
)
from refq.errors import SpecError


def test_candidate_grid() -> None:
    c = ptq4vit_candidates(2.0)
    assert c.shape == (100,)
    # i = 0..99, not 100; multipliers rounded to float32 (the code's torch.tensor)
    want = [float(np.float32(0.01 + i * (1.2 - 0.01) / 100)) * 2.0 for i in range(100)]
    np.testing.assert_array_equal(c, np.array(want), strict=True)
    assert c[0] == pytest.approx(0.02) and c[-1] == pytest.approx(2.0 * (0.01 + 99 * 0.0119))
    assert ptq4vit_candidates(np.array([1.0, 3.0])).shape == (100, 2)
    with pytest.raises(SpecError):
        ptq4vit_candidates(1.0, alpha=0.0)


def _oracle_sym(x: np.ndarray, d: float, b: int) -> np.ndarray:
    # independent scalar oracle (Python round() is half-even)
    lo, hi = -(2 ** (b - 1)), 2 ** (b - 1) - 1
    return np.vectorize(lambda v: min(max(round(v / d), lo), hi) * d)(x)


def test_sym_fake_quant_oracle() -> None:
    x = np.array([-3.0, -2.5, -0.5, 0.5, 1.5, 2.5, 100.0])
    np.testing.assert_array_equal(sym_fake_quant(x, 1.0, 3), _oracle_sym(x, 1.0, 3))
    assert list(gelu_twin_fake_quant(np.array([-0.17, 0.3]), 0.1, 4)) == pytest.approx(
        [round(-0.17 / (0.16997124254703522 / 8)) * 0.16997124254703522 / 8, 0.3])


def test_linear_search_brute_force() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 12))
    w = rng.standard_normal((6, 12)) * 0.2
    b = rng.standard_normal(6)
    r = search_linear_scales(x, w, b, w_bits=4, a_bits=4, metric="mse", rounds=2,
                             weight_blocks=2)
    ref = x @ w.T + b
    wd0 = [np.abs(w[:3]).max() / 7.5, np.abs(w[3:]).max() / 7.5]
    ad0 = np.abs(x).max() / 7.5
    mult = [float(np.float32(0.01 + i * (1.2 - 0.01) / 100)) for i in range(100)]
    # replay the last round by brute force: weights given the final input scale of round 1
    a_prev = r["history"][0]["a_index"]
    xs = _oracle_sym(x, mult[a_prev] * ad0, 4)
    for v in range(2):
        rows = slice(3 * v, 3 * v + 3)
        losses = [mse(ref[..., rows], xs @ _oracle_sym(w[rows], m * wd0[v], 4).T + b[rows])
                  for m in mult]
        best = int(np.argmin(losses))
        assert r["w_index"][v] == best
        assert r["w_delta"][v] == pytest.approx(mult[best] * wd0[v], rel=1e-15)
    wq = np.concatenate([_oracle_sym(w[3 * v:3 * v + 3], r["w_delta"][v], 4) for v in range(2)])
    losses = [mse(ref, _oracle_sym(x, m * ad0, 4) @ wq.T + b) for m in mult]
    assert r["a_index"] == int(np.argmin(losses))
    assert r["loss"] == pytest.approx(min(losses))
    assert r["loss"] < r["loss_init"]
    assert len(r["history"]) == 2


def test_matmul_search_per_head_beats_start() -> None:
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 10, 8)) * np.array([1.0, 5.0, 0.2])[None, :, None, None]
    b = rng.standard_normal((2, 3, 8, 10))
    r = search_matmul_scales(a, b, a_bits=4, b_bits=4, rounds=1)
    assert len(r["a_delta"]) == 3 and len(r["b_delta"]) == 3
    assert r["loss"] < r["loss_init"]
    # B step by brute force on head 1 (cosine distance along the last axis)
    ad = np.array(r["a_delta"])[:, None, None]
    aq = sym_fake_quant(a, ad, 4)
    bd0 = np.abs(b[:, 1]).max() / 7.5
    ref = a @ b

    def cosd(u: np.ndarray, v: np.ndarray) -> float:
        num = (u * v).sum(-1)
        den = np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-8)
        return float(1 - np.mean(num / den))

    losses = [cosd(ref[:, 1], aq[:, 1] @ sym_fake_quant(b[:, 1], (0.01 + i * 0.0119) * bd0, 4))
              for i in range(100)]
    assert r["b_index"][1] == int(np.argmin(losses))


def test_ptq4vit_search_quantizers() -> None:
    from refq.calib import ptq4vit_search, ptq4vit_search_matmul

    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 12, 8))
    w = rng.standard_normal((9, 8))
    wq, xq, rec = ptq4vit_search(x, w, None, w_bits=4, a_bits=6, weight_blocks=3, rounds=1)
    assert wq.axis == 0 and xq.axis is None
    np.testing.assert_array_equal(wq.fake_quant(w), sym_fake_quant(
        w, np.repeat(rec["w_delta"], 3)[:, None], 4))
    np.testing.assert_array_equal(xq.fake_quant(x), sym_fake_quant(x, rec["a_delta"], 6))
    a = rng.standard_normal((1, 2, 5, 4))
    b = rng.standard_normal((1, 2, 4, 5))
    aq, bq, rec = ptq4vit_search_matmul(a, b, a_bits=4, b_bits=4, rounds=1)
    assert aq.axis == 1 and bq.axis == 1
    np.testing.assert_array_equal(
        bq.fake_quant(b), sym_fake_quant(b, np.array(rec["b_delta"])[:, None, None], 4))
