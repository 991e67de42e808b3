"""Backward passes of refq.nn.backward vs central finite differences and torch autograd."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refq.errors import SpecError
from refq.nn import backward as bw
from refq.nn.layers import gelu, layernorm, linear, softmax


def _fd(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite differences of a scalar function (independent oracle)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp = x.copy()
        xm = x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-6) -> None:
    scale = max(float(np.max(np.abs(b))), 1e-12)
    assert float(np.max(np.abs(a - b))) <= rtol * scale * 10 + 1e-9, (a, b)


seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=10, deadline=None)
@given(seeds)
def test_linear_fd(seed: int) -> None:
    r = np.random.default_rng(seed)
    x, w, b, gy = r.normal(size=(2, 3, 4)), r.normal(size=(5, 4)), r.normal(size=5), r.normal(
        size=(2, 3, 5))
    gx, gw, gb = bw.linear_backward(x, w, gy)
    _close(gx, _fd(lambda z: float(np.sum(linear(z, w, b) * gy)), x))
    _close(gw, _fd(lambda z: float(np.sum(linear(x, z, b) * gy)), w))
    _close(gb, _fd(lambda z: float(np.sum(linear(x, w, z) * gy)), b))


@settings(max_examples=10, deadline=None)
@given(seeds)
def test_layernorm_fd(seed: int) -> None:
    r = np.random.default_rng(seed)
    x, w, b, gy = r.normal(size=(3, 6)), r.normal(size=6), r.normal(size=6), r.normal(size=(3, 6))
    gx, gw, gb = bw.layernorm_backward(x, w, 1e-6, gy)
    _close(gx, _fd(lambda z: float(np.sum(layernorm(z, w, b, 1e-6) * gy)), x))
    _close(gw, _fd(lambda z: float(np.sum(layernorm(x, z, b, 1e-6) * gy)), w))
    _close(gb, _fd(lambda z: float(np.sum(layernorm(x, w, z, 1e-6) * gy)), b))


@settings(max_examples=10, deadline=None)
@given(seeds)
def test_gelu_softmax_fd(seed: int) -> None:
    r = np.random.default_rng(seed)
    x, gy = r.normal(size=(3, 5)) * 3, r.normal(size=(3, 5))
    _close(bw.gelu_backward(x, gy), _fd(lambda z: float(np.sum(gelu(z) * gy)), x))
    _close(bw.softmax_backward(softmax(x), gy), _fd(lambda z: float(np.sum(softmax(z) * gy)), x))


@settings(max_examples=10, deadline=None)
@given(seeds)
def test_losses_fd(seed: int) -> None:
    r = np.random.default_rng(seed)
    pf, p = r.normal(size=(3, 4)), r.normal(size=(3, 4))
    lab = r.integers(0, 4, size=3)
    _, g = bw.kl_logits(pf, p)
    _close(g, _fd(lambda z: bw.kl_logits(pf, z)[0], p))
    _, g2 = bw.cross_entropy_logits(p, lab)
    _close(g2, _fd(lambda z: bw.cross_entropy_logits(z, lab)[0], p))
    # the degenerate case of PTQ4ViT issue #23: the KL gradient at pred == pred_fp is zero
    _, g0 = bw.kl_logits(pf, pf.copy())
    np.testing.assert_array_equal(g0, np.zeros_like(g0), strict=True)


def _block_params(r: np.random.Generator, c: int, hidden: int) -> dict[str, np.ndarray]:
    pre = "blocks.0."
    shapes = {
        "norm1.weight": (c,), "norm1.bias": (c,), "attn.qkv.weight": (3 * c, c),
        "attn.qkv.bias": (3 * c,), "attn.proj.weight": (c, c), "attn.proj.bias": (c,),
        "norm2.weight": (c,), "norm2.bias": (c,), "mlp.fc1.weight": (hidden, c),
        "mlp.fc1.bias": (hidden,), "mlp.fc2.weight": (c, hidden), "mlp.fc2.bias": (c,),
    }
    return {pre + k: r.normal(size=s) * 0.5 for k, s in shapes.items()}


@settings(max_examples=3, deadline=None)
@given(seeds)
def test_block_fd(seed: int) -> None:
    r = np.random.default_rng(seed)
    p = _block_params(r, 4, 6)
    x, gy = r.normal(size=(2, 3, 4)), r.normal(size=(2, 3, 4))
    _y, cache = bw.block_forward(x, p, "blocks.0.", 2, 1e-6)
    gx, grads = bw.block_backward(cache, p, "blocks.0.", 2, 1e-6, gy)

    def f(z: np.ndarray) -> float:
        return float(np.sum(bw.block_forward(z, p, "blocks.0.", 2, 1e-6)[0] * gy))

    _close(gx, _fd(f, x))
    for name in ("blocks.0.attn.qkv.weight", "blocks.0.norm1.weight", "blocks.0.mlp.fc1.bias"):
        def fp(z: np.ndarray, name: str = name) -> float:
            q = dict(p)
            q[name] = z
            return float(np.sum(bw.block_forward(x, q, "blocks.0.", 2, 1e-6)[0] * gy))
        _close(grads[name], _fd(fp, p[name]))
    assert set(grads) == set(p)


def test_block_forward_matches_model_block() -> None:
    from refq.nn.blocks import attention, mlp
    r = np.random.default_rng(1)
    p = _block_params(r, 4, 6)
    x = r.normal(size=(2, 3, 4))
    pre = "blocks.0."

    def t(name: str, a: np.ndarray) -> np.ndarray:
        return a

    h = x + attention(layernorm(x, p[pre + "norm1.weight"], p[pre + "norm1.bias"], 1e-6), p,
                      pre, 2, t)
    h = h + mlp(layernorm(h, p[pre + "norm2.weight"], p[pre + "norm2.bias"], 1e-6), p, pre, t)
    np.testing.assert_allclose(bw.block_forward(x, p, pre, 2, 1e-6)[0], h, rtol=1e-12)


def test_ste() -> None:
    x = np.array([-2.0, -1.0, 0.0, 1.0, 1.5])
    g = bw.fake_quant_ste_backward(x, -1.0, 1.0, np.ones(5))
    np.testing.assert_array_equal(g, np.array([0.0, 1.0, 1.0, 1.0, 0.0]), strict=True)
    with pytest.raises(SpecError):
        bw.fake_quant_ste_backward(x, 1.0, -1.0, np.ones(5))


@pytest.mark.torch
def test_block_vs_torch() -> None:
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(7)
    c, hid, heads, pre = 8, 12, 2, "blocks.0."
    p = _block_params(r, c, hid)
    x, gy = r.normal(size=(2, 5, c)), r.normal(size=(2, 5, c))
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx = torch.tensor(x, requires_grad=True)
    F = torch.nn.functional

    def tblock(z: torch.Tensor) -> torch.Tensor:  # type: ignore[name-defined]
        n1 = F.layer_norm(z, (c,), tp[pre + "norm1.weight"], tp[pre + "norm1.bias"], 1e-6)
        qkv = F.linear(n1, tp[pre + "attn.qkv.weight"], tp[pre + "attn.qkv.bias"])
        q, k, v = qkv.reshape(2, 5, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) * (c // heads) ** -0.5, dim=-1)
        o = (a @ v).transpose(1, 2).reshape(2, 5, c)
        z1 = z + F.linear(o, tp[pre + "attn.proj.weight"], tp[pre + "attn.proj.bias"])
        n2 = F.layer_norm(z1, (c,), tp[pre + "norm2.weight"], tp[pre + "norm2.bias"], 1e-6)
        h = F.gelu(F.linear(n2, tp[pre + "mlp.fc1.weight"], tp[pre + "mlp.fc1.bias"]))
        return z1 + F.linear(h, tp[pre + "mlp.fc2.weight"], tp[pre + "mlp.fc2.bias"])

    (tblock(tx) * torch.tensor(gy)).sum().backward()
    _, cache = bw.block_forward(x, p, pre, heads, 1e-6)
    gx, grads = bw.block_backward(cache, p, pre, heads, 1e-6, gy)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-6, atol=1e-12)
    for k, v in grads.items():
        np.testing.assert_allclose(v, tp[k].grad.numpy(), rtol=1e-6, atol=1e-12)
