"""Float layers: GELU, LayerNorm, softmax, patchify, head split/merge."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refq.errors import SpecError
from refq.nn import layers as L


def test_gelu_is_exact_erf() -> None:
    x = np.linspace(-8, 8, 101)
    want = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(L.gelu(x), want, rtol=1e-15, atol=1e-300)
    assert L.gelu(x.astype(np.float32)).dtype == np.float32


def test_layernorm_matches_definition() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 8))
    w, b = rng.standard_normal(8), rng.standard_normal(8)
    y = L.layernorm(x, w, b, 1e-6)
    m = x.mean(-1, keepdims=True)
    v = x.var(-1, keepdims=True)
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-6) * w + b, rtol=1e-12)


def test_softmax_rows_sum_to_one_and_large_inputs_are_stable() -> None:
    x = np.array([[1000.0, 1000.0, -1000.0], [0.0, 1.0, 2.0]])
    y = L.softmax(x)
    np.testing.assert_allclose(y.sum(-1), 1.0)
    np.testing.assert_allclose(y[0], [0.5, 0.5, 0.0])


def test_patchify_equals_strided_convolution() -> None:
    rng = np.random.default_rng(1)
    img = rng.standard_normal((2, 3, 8, 12))
    w = rng.standard_normal((5, 3, 4, 4))
    out = L.linear(L.patchify(img, 4), w.reshape(5, -1))  # (2, 6, 5)
    conv = np.einsum("bchw,ochw->bo", img[:, :, 4:8, 8:12], w)  # patch row 1, column 2
    np.testing.assert_allclose(out[:, 1 * 3 + 2], conv, rtol=1e-12)
    with pytest.raises(SpecError, match="multiple of the patch"):
        L.patchify(img[:, :, :7], 4)


def test_split_merge_heads_roundtrip() -> None:
    x = np.arange(2 * 3 * 12, dtype=np.float64).reshape(2, 3, 12)
    q, _, v = L.split_heads(x, 2)
    assert q.shape == (2, 2, 3, 2)
    np.testing.assert_array_equal(L.merge_heads(q), x[..., :4])
    np.testing.assert_array_equal(L.merge_heads(v), x[..., 8:])
