"""Twin-uniform and log searches: brute-force choice, consistency with refq.quant."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib import (
    gelu_twin_search,
    log2_init,
    ptq4vit_search,
    ptq4vit_search_matmul,
    twin_split_search,
)
from refq.calib.search_ptq4vit import gelu_twin_fake_quant
from refq.quant.log2 import Log2Quantizer
from refq.quant.twin import TwinUniformQuantizer
from refq.quant.uniform import UniformQuantizer

from ._data import gelu_acts, softmax_probs


@pytest.mark.parametrize("mode", ["code", "paper"])
def test_twin_split_brute_force(mode: str) -> None:
    x = softmax_probs(np.random.default_rng(0), (1, 1, 197, 197))
    q, rec = twin_split_search(x, 4, mode=mode)
    losses = [np.mean((x - TwinUniformQuantizer(4, "softmax", m=m, mode=mode).fake_quant(x))
                      ** 2) for m in range(20)]
    assert rec["m"] == int(np.argmin(losses)) and q.m == rec["m"]
    assert rec["losses"] == pytest.approx(losses, rel=1e-12)
    # the code form (sum of branches, +s above the split) beats PTQ4ViT's own signed base
    # quantizer; the paper form beats the 16-level unsigned min-max uniform too
    if mode == "code":
        uni = UniformQuantizer.from_absmax(float(x.max()), 4, denom=7.5)
    else:
        uni = UniformQuantizer.from_minmax(0.0, float(x.max()), 4)
    assert rec["loss"] < np.mean((x - uni.fake_quant(x)) ** 2)


def test_gelu_twin_search() -> None:
    x = gelu_acts(np.random.default_rng(1))
    q, rec = gelu_twin_search(x, 4)
    d0 = x.max() / 7.5
    grid = [(0.01 + i * 1.19 / 100) * d0 for i in range(100)]
    losses = [np.mean((x - gelu_twin_fake_quant(x, d, 4)) ** 2) for d in grid]
    assert rec["index"] == int(np.argmin(losses))
    np.testing.assert_array_equal(q.fake_quant(x), gelu_twin_fake_quant(x, q.delta_pos, 4))
    qp, recp = gelu_twin_search(x, 4, mode="paper")
    assert qp.delta_pos == pytest.approx(qp.delta_neg * 2 ** recp["k"])
    assert rec["loss"] < recp["losses"][0]


def test_log2_init_brute_force() -> None:
    x = softmax_probs(np.random.default_rng(2))
    q, rec = log2_init(x, 4, base="sqrt2")
    losses = [np.mean((x - Log2Quantizer(4, "sqrt2", float(np.quantile(x, p))).fake_quant(x))
                      ** 2) for p in (0.999, 0.9999, 0.99999)]
    assert rec["index"] == int(np.argmin(losses)) and q.base == "sqrt2"
    q2, rec2 = log2_init(x, 4, base="2", scale=1.0)
    assert q2.scale == 1.0 and rec2["p"] is None


def test_ptq4vit_post_gelu_and_softmax() -> None:
    rng = np.random.default_rng(3)
    x = gelu_acts(rng, (1, 10, 16))
    w = rng.standard_normal((8, 16))
    _, xq, rec = ptq4vit_search(x, w, np.zeros(8), w_bits=4, a_bits=4, post_gelu=True,
                                rounds=1)
    assert isinstance(xq, TwinUniformQuantizer) and xq.form == "gelu"
    np.testing.assert_array_equal(xq.fake_quant(x), gelu_twin_fake_quant(x, rec["a_delta"], 4))
    a = softmax_probs(rng, (1, 2, 12, 12))
    v = rng.standard_normal((1, 2, 12, 6))
    aq, _, rec = ptq4vit_search_matmul(a, v, a_bits=4, b_bits=4, softmax=True, rounds=1)
    assert isinstance(aq, TwinUniformQuantizer) and aq.m == rec["a_split_m"]
    ref = a @ v
    losses = [1 - np.mean(np.sum(ref * (TwinUniformQuantizer(4, "softmax", m=m).fake_quant(a)
                                        @ v), -1)
                          / np.maximum(np.linalg.norm(ref, axis=-1) * np.linalg.norm(
                              TwinUniformQuantizer(4, "softmax", m=m).fake_quant(a) @ v,
                              axis=-1), 1e-8)) for m in range(20)]
    assert rec["a_split_m"] == int(np.argmin(losses))
    assert rec["loss"] < rec["loss_init"]
