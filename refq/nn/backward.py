"""Reverse-mode gradients (backward passes) of the float ViT building blocks of refq.nn.

Each ``*_backward`` function takes the forward inputs (or a cache returned by the matching
``*_forward``) and the upstream gradient ``gy = dL/dy`` and returns the gradients with respect
to the inputs and parameters. All arithmetic is float64 NumPy (the dtype of the arguments);
formulas are the textbook chain rule, checked in tests/nn/test_backward.py against central
finite differences and against torch autograd (relative 1e-6 in float64).

Definitions match :mod:`refq.nn.layers`: ``linear`` is ``x @ W.T + b``; LayerNorm uses the
biased variance with ``eps`` inside the square root; GELU is the exact erf form; softmax is
along the last axis; attention scores are ``q @ k.T * d**-0.5``.

Fake quantization (straight-through estimator, STE): ``fake_quant_ste_backward`` passes the
gradient unchanged where the input lies inside the quantizer's clipping range ``[lo, hi]``
(both ends included) and returns zero outside it; rounding itself is treated as the identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.nn.layers import (
    FloatArray,
    attention_scores,
    gelu,
    layernorm,
    linear,
    merge_heads,
    softmax,
    split_heads,
)

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def linear_backward(
    x: FloatArray, weight: FloatArray, gy: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Gradients of ``y = x @ W.T + b``: returns ``(dx, dW, db)``; x (..., in), W (out, in)."""
    gx: FloatArray = gy @ weight
    x2 = x.reshape(-1, x.shape[-1])
    g2 = gy.reshape(-1, gy.shape[-1])
    gw: FloatArray = g2.T @ x2
    gb: FloatArray = g2.sum(axis=0)
    return gx, gw, gb


def layernorm_backward(
    x: FloatArray, weight: FloatArray, eps: float, gy: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Gradients of LayerNorm over the last axis: returns ``(dx, dweight, dbias)``.

    With ``xh = (x - mean)/sqrt(var + eps)`` and ``g = gy * weight``:
    ``dx = (g - mean(g) - xh * mean(g * xh)) / sqrt(var + eps)``.
    """
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xh = xc * rstd
    g = gy * weight
    gx: FloatArray = (
        g - g.mean(axis=-1, keepdims=True) - xh * np.mean(g * xh, axis=-1, keepdims=True)
    ) * rstd
    red = tuple(range(x.ndim - 1))
    gw: FloatArray = np.sum(gy * xh, axis=red)
    gb: FloatArray = np.sum(gy, axis=red)
    return gx, gw, gb


def gelu_backward(x: FloatArray, gy: FloatArray) -> FloatArray:
    """Gradient of exact GELU: ``Phi(x) + x * phi(x)``, Phi/phi the standard normal cdf/pdf.

    Evaluated as ``gy * (0.5 * (1 + erf(x / sqrt(2))) + x * (exp(-0.5 * x * x) / sqrt(2 pi)))``
    with in-place float64 operations (same roundings as the out-of-place expression)."""
    from scipy.special import erf

    cdf = np.divide(x, math.sqrt(2.0))
    erf(cdf, out=cdf)
    cdf += 1.0
    cdf *= 0.5
    pdf = np.multiply(x, -0.5)
    pdf *= x
    np.exp(pdf, out=pdf)
    pdf *= _INV_SQRT_2PI
    pdf *= x
    cdf += pdf
    g: FloatArray = np.multiply(gy, cdf, out=cdf)
    return g


def softmax_backward(y: FloatArray, gy: FloatArray) -> FloatArray:
    """Gradient of ``y = softmax(s)`` along the last axis given ``y``: ``y * (gy - sum(gy*y))``."""
    g: FloatArray = y * (gy - np.sum(gy * y, axis=-1, keepdims=True))
    return g


def fake_quant_ste_backward(
    x: FloatArray, lo: float | FloatArray, hi: float | FloatArray, gy: FloatArray
) -> FloatArray:
    """Straight-through estimator of a fake quantizer with clipping range ``[lo, hi]``.

    The gradient passes unchanged where ``lo <= x <= hi`` (the rounding is treated as the
    identity) and is zero outside (the clamp's derivative). ``lo``/``hi`` broadcast against x
    (per-channel ranges). Raises SpecError if ``lo > hi`` anywhere.
    """
    lo_a = np.asarray(lo, dtype=np.float64)
    hi_a = np.asarray(hi, dtype=np.float64)
    if np.any(lo_a > hi_a):
        raise SpecError("fake_quant_ste_backward: clipping range has lo > hi")
    mask = (x >= lo_a) & (x <= hi_a)
    g: FloatArray = np.where(mask, gy, 0.0)
    return g


def kl_logits(pred_fp: FloatArray, pred: FloatArray) -> tuple[float, FloatArray]:
    """``L = mean_b KL(softmax(pred_fp) || softmax(pred))`` and ``dL/dpred`` (B, K).

    ``dL/dpred = (softmax(pred) - softmax(pred_fp)) / B``; it is exactly zero when
    ``pred == pred_fp`` (the PTQ4ViT issue #23 pitfall).
    """
    b = pred.shape[0]
    logq = pred - pred.max(axis=-1, keepdims=True)
    logq = logq - np.log(np.exp(logq).sum(axis=-1, keepdims=True))
    logp = pred_fp - pred_fp.max(axis=-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=-1, keepdims=True))
    p = np.exp(logp)
    loss = float(np.sum(p * (logp - logq)) / b)
    g: FloatArray = (np.exp(logq) - p) / b
    return loss, g


def cross_entropy_logits(
    pred: FloatArray, labels: np.ndarray[Any, Any]
) -> tuple[float, FloatArray]:
    """``L = mean_b -log softmax(pred)[b, labels[b]]`` and ``dL/dpred = (softmax - onehot)/B``."""
    b = pred.shape[0]
    lab = np.asarray(labels, dtype=np.int64)
    if lab.shape != (b,) or np.any(lab < 0) or np.any(lab >= pred.shape[-1]):
        raise SpecError(
            f"cross_entropy_logits: labels of shape {lab.shape} invalid for logits {pred.shape}"
        )
    z = pred - pred.max(axis=-1, keepdims=True)
    logq = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    loss = float(-np.mean(logq[np.arange(b), lab]))
    g = np.exp(logq)
    g[np.arange(b), lab] -= 1.0
    out: FloatArray = g / b
    return loss, out


@dataclass
class BlockCache:
    """Intermediates of one pre-norm block forward, kept for its backward."""

    x: FloatArray
    values: dict[str, FloatArray] = field(default_factory=dict)


def block_forward(
    x: FloatArray, p: dict[str, FloatArray], prefix: str, num_heads: int, eps: float
) -> tuple[FloatArray, BlockCache]:
    """Pre-norm ViT block ``x1 = x + attn(norm1(x)); y = x1 + mlp(norm2(x1))`` with a cache.

    Parameters are read as in :mod:`refq.nn.blocks` (timm names under ``prefix``).
    """
    a, m = prefix + "attn.", prefix + "mlp."
    c = BlockCache(x)
    v = c.values
    v["n1"] = layernorm(x, p[prefix + "norm1.weight"], p[prefix + "norm1.bias"], eps)
    qkv = linear(v["n1"], p[a + "qkv.weight"], p.get(a + "qkv.bias"))
    q, k, vv = split_heads(qkv, num_heads)
    v["q"], v["k"], v["v"] = q, k, vv
    scale = float(q.shape[-1]) ** -0.5
    v["attn"] = softmax(attention_scores(q, k, scale), axis=-1)
    v["o"] = merge_heads(v["attn"] @ vv)
    x1 = x + linear(v["o"], p[a + "proj.weight"], p[a + "proj.bias"])
    v["x1"] = x1
    v["n2"] = layernorm(x1, p[prefix + "norm2.weight"], p[prefix + "norm2.bias"], eps)
    v["h"] = linear(v["n2"], p[m + "fc1.weight"], p[m + "fc1.bias"])
    v["g"] = gelu(v["h"])
    y = x1 + linear(v["g"], p[m + "fc2.weight"], p[m + "fc2.bias"])
    return y, c


def attention_core_backward(
    q: FloatArray, k: FloatArray, v: FloatArray, attn: FloatArray, go: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Backward of ``o = softmax(q kᵀ d^-1/2) v`` per head; go (B,H,N,d) -> (dq, dk, dv)."""
    scale = float(q.shape[-1]) ** -0.5
    gv: FloatArray = np.swapaxes(attn, -1, -2) @ go
    ga = go @ np.swapaxes(v, -1, -2)
    gs = softmax_backward(attn, ga) * scale
    gq: FloatArray = gs @ k
    gk: FloatArray = np.swapaxes(gs, -1, -2) @ q
    return gq, gk, gv


def block_backward(
    cache: BlockCache,
    p: dict[str, FloatArray],
    prefix: str,
    num_heads: int,
    eps: float,
    gy: FloatArray,
    out_grads: dict[str, FloatArray] | None = None,
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Backward of :func:`block_forward`: returns ``(dx, {param name: gradient})``.

    If ``out_grads`` is given, the gradients w.r.t. the OUTPUTS of the block's ops (names of
    ``refq.nn.blocks.block_ops``: ``attn.qkv`` (B,N,3C), ``attn.q@k`` (B,H,N,N, the scaled
    scores), ``attn.attn@v`` (B,N,C), ``attn.proj``, ``mlp.fc1``, ``mlp.fc2``) are stored in it.
    """
    a, m = prefix + "attn.", prefix + "mlp."
    v = cache.values
    grads: dict[str, FloatArray] = {}
    gg, grads[m + "fc2.weight"], grads[m + "fc2.bias"] = linear_backward(
        v["g"], p[m + "fc2.weight"], gy)
    gh = gelu_backward(v["h"], gg)
    if out_grads is not None:
        out_grads[m + "fc2"] = gy
        out_grads[m + "fc1"] = gh
    gn2, grads[m + "fc1.weight"], grads[m + "fc1.bias"] = linear_backward(
        v["n2"], p[m + "fc1.weight"], gh)
    gx1_ln, grads[prefix + "norm2.weight"], grads[prefix + "norm2.bias"] = layernorm_backward(
        v["x1"], p[prefix + "norm2.weight"], eps, gn2)
    gx1 = gy + gx1_ln
    go, grads[a + "proj.weight"], grads[a + "proj.bias"] = linear_backward(
        v["o"], p[a + "proj.weight"], gx1)
    b, n, cdim = go.shape
    go4 = go.reshape(b, n, num_heads, cdim // num_heads).transpose(0, 2, 1, 3)
    if out_grads is not None:
        out_grads[a + "proj"] = gx1
        out_grads[a + "attn@v"] = go
        ga = go4 @ np.swapaxes(v["v"], -1, -2)
        out_grads[a + "q@k"] = softmax_backward(v["attn"], ga)
    gq, gk, gv = attention_core_backward(v["q"], v["k"], v["v"], v["attn"], go4)
    gqkv = np.stack([gq, gk, gv]).transpose(1, 3, 0, 2, 4).reshape(b, n, 3 * cdim)
    if out_grads is not None:
        out_grads[a + "qkv"] = gqkv
    gn1, grads[a + "qkv.weight"], gqkv_b = linear_backward(v["n1"], p[a + "qkv.weight"], gqkv)
    if a + "qkv.bias" in p:
        grads[a + "qkv.bias"] = gqkv_b
    gx_ln, grads[prefix + "norm1.weight"], grads[prefix + "norm1.bias"] = layernorm_backward(
        cache.x, p[prefix + "norm1.weight"], eps, gn1)
    gx: FloatArray = gx1 + gx_ln
    return gx, grads


__all__ = [
    "BlockCache",
    "attention_core_backward",
    "block_backward",
    "block_forward",
    "cross_entropy_logits",
    "fake_quant_ste_backward",
    "gelu_backward",
    "kl_logits",
    "layernorm_backward",
    "linear_backward",
    "softmax_backward",
]
