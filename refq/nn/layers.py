"""Float building blocks of the NumPy ViT family: linear, LayerNorm, GELU, softmax, attention.

Every function is a pure function of NumPy arrays; the dtype of the result is the dtype of
the activation argument (float64 by default, float32 when the model is built with it).
Shapes use B = batch, N = tokens, C = channels (embedding width), H = heads, d = head width.

Conventions (those of timm / PyTorch, so checkpoints load unchanged):

* ``linear(x, w, b)`` computes ``x @ w.T + b`` with ``w`` of shape ``(out, in)``.
* ``layernorm`` normalises over the last axis with the biased variance and ``eps`` inside
  the square root.
* ``gelu`` is the exact GELU ``0.5 x (1 + erf(x / sqrt 2))`` (not the tanh approximation).
* ``softmax`` subtracts the row maximum before exponentiating.
* ``patchify`` flattens each ``p x p`` patch in (channel, row, column) order, the order of a
  stride-``p`` convolution weight ``(C_out, C_in, p, p)`` reshaped to ``(C_out, C_in p p)``;
  patches are numbered row-major over the patch grid (timm's ``flatten(2)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import erf

from refq.errors import SpecError

FloatArray = npt.NDArray[np.floating[Any]]
"""A float64 or float32 NumPy array."""

TapFn = Callable[[str, FloatArray], "FloatArray | None"]
"""The hook protocol: ``tap(name, array) -> array | None``.

The model calls ``tap`` at every named point of its forward pass, in execution order. The
returned array (same shape; cast to the model's dtype) REPLACES the tensor from that point
on; returning ``None`` leaves it unchanged (convenient for observers). See
:mod:`refq.nn.base` for the naming scheme.
"""

_SQRT1_2 = 1.0 / math.sqrt(2.0)


def linear(x: FloatArray, weight: FloatArray, bias: FloatArray | None = None) -> FloatArray:
    """``x @ weight.T + bias``: ``x`` (..., in), ``weight`` (out, in), ``bias`` (out,)."""
    y: FloatArray = np.matmul(x, weight.T)
    if bias is not None:
        y = y + bias
    return y


def layernorm(x: FloatArray, weight: FloatArray, bias: FloatArray, eps: float) -> FloatArray:
    """LayerNorm over the last axis: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    ``var`` is the biased (population) variance, as in PyTorch.
    """
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    y: FloatArray = xc / np.sqrt(var + eps) * weight + bias
    return y


def gelu(x: FloatArray) -> FloatArray:
    """Exact GELU: ``0.5 * x * (1 + erf(x / sqrt(2)))`` (scipy.special.erf), same dtype."""
    y: FloatArray = (0.5 * x * (1.0 + erf(x * _SQRT1_2))).astype(x.dtype, copy=False)
    return y


def softmax(x: FloatArray, axis: int = -1) -> FloatArray:
    """Numerically stable softmax along ``axis`` (the row maximum is subtracted first)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    y: FloatArray = e / e.sum(axis=axis, keepdims=True)
    return y


def split_heads(x: FloatArray, num_heads: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Split a fused qkv output (B, N, 3C) into q, k, v of shape (B, H, N, C/H) each.

    The layout is timm's: the last axis is (3, H, d), i.e. rows 0..C-1 of the qkv weight
    are the query, heads consecutive.
    """
    b, n, c3 = x.shape
    c = c3 // 3
    d = c // num_heads
    t = x.reshape(b, n, 3, num_heads, d).transpose(2, 0, 3, 1, 4)
    return t[0], t[1], t[2]


def merge_heads(x: FloatArray) -> FloatArray:
    """(B, H, N, d) -> (B, N, H d): the inverse of the per-head split of one of q, k, v."""
    b, h, n, d = x.shape
    y: FloatArray = x.transpose(0, 2, 1, 3).reshape(b, n, h * d)
    return y


def patchify(images: FloatArray, patch: int) -> FloatArray:
    """(B, C, H, W) -> (B, (H/p)(W/p), C p p): the input of the patch-embedding linear.

    Raises SpecError if H or W is not a multiple of ``patch``.
    """
    if images.ndim != 4:
        raise SpecError(f"patchify: expected images of shape (B, C, H, W), got {images.shape}")
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise SpecError(f"patchify: image size {h}x{w} is not a multiple of the patch {patch}")
    gh, gw = h // patch, w // patch
    t = images.reshape(b, c, gh, patch, gw, patch).transpose(0, 2, 4, 1, 3, 5)
    y: FloatArray = t.reshape(b, gh * gw, c * patch * patch)
    return y


def attention_scores(q: FloatArray, k: FloatArray, scale: float) -> FloatArray:
    """``(q @ k^T) * scale``: q, k (..., N, d) -> (..., N, N); the softmax input."""
    y: FloatArray = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    return y


__all__ = [
    "FloatArray",
    "TapFn",
    "attention_scores",
    "gelu",
    "layernorm",
    "linear",
    "merge_heads",
    "patchify",
    "softmax",
    "split_heads",
]
