"""Whole-model backward of the NumPy Swin Transformer (refq.nn.swin) in float64.

``swin_op_output_grads(model, images, loss_grad)`` runs the model's own forward
(``forward_with_taps``, every tap recorded), evaluates ``loss_grad(logits) -> dL/dlogits``
and back-propagates through the head, the mean pooling, the final LayerNorm, every
(shifted-)window block, the patch mergings and the patch embedding's LayerNorm, returning
the gradient of the loss w.r.t. the OUTPUT of every op of ``model.ops()`` keyed by op name
(``patch_embed.proj``, ``layers.s.downsample.reduction``, ``layers.s.blocks.j.attn.qkv`` /
``q@k`` / ``attn@v`` / ``proj``, ``mlp.fc1`` / ``fc2``, ``head``) in the layout of the op
applied to its input tap, as the calibration searches compute it: window ops batched over
B·W windows (q@k, attn@v, proj), except ``attn.qkv``, a token-wise linear of the token
layout ``norm1`` tap (B, L, 3C) — its ``attn.qkv`` tap holds the same values rolled and
cut into windows. The relative position bias and the shift
mask are additive constants of the scores, so the gradient w.r.t. the scaled q@k is the
gradient w.r.t. the logits; the cyclic shift, window partition/reverse and patch merging
are permutations, whose backward is the inverse permutation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.nn.backward import (
    attention_core_backward,
    gelu_backward,
    layernorm_backward,
    linear_backward,
    softmax_backward,
)
from refq.nn.configs import SwinConfig
from refq.nn.grad_vit import LossGrad
from refq.nn.layers import FloatArray, TapFn
from refq.nn.swin import patch_merge, window_partition, window_reverse


def _tokens_to_windows(g: FloatArray, r: int, w: int, shift: int) -> FloatArray:
    """(B, L, C) token gradient → (B·W, w², C): the forward's roll(-shift) + partition."""
    b, _, c = g.shape
    grid = g.reshape(b, r, r, c)
    if shift:
        grid = np.roll(grid, (-shift, -shift), axis=(1, 2))
    return window_partition(grid, w)


def _windows_to_tokens(g: FloatArray, r: int, w: int, shift: int) -> FloatArray:
    """(B·W, w², C) → (B, L, C): the forward's reverse + roll(+shift)."""
    grid = window_reverse(g, w, r)
    if shift:
        grid = np.roll(grid, (shift, shift), axis=(1, 2))
    return grid.reshape(grid.shape[0], r * r, grid.shape[-1])


def _unmerge(g: FloatArray, r: int) -> FloatArray:
    """Backward of :func:`refq.nn.swin.patch_merge` (B, r², 4C) → (B, (2r)², C)."""
    b, _, c4 = g.shape
    c = c4 // 4
    gg = g.reshape(b, r, r, 4, c)
    out = np.zeros((b, 2 * r, 2 * r, c), dtype=g.dtype)
    out[:, 0::2, 0::2] = gg[:, :, :, 0]
    out[:, 1::2, 0::2] = gg[:, :, :, 1]
    out[:, 0::2, 1::2] = gg[:, :, :, 2]
    out[:, 1::2, 1::2] = gg[:, :, :, 3]
    return out.reshape(b, 4 * r * r, c)


def _block_backward(cfg: SwinConfig, p: dict[str, FloatArray], taps: dict[str, FloatArray],
                    x_in: FloatArray, st: int, j: int, gy: FloatArray,
                    out: dict[str, FloatArray]) -> FloatArray:
    pre = f"layers.{st}.blocks.{j}."
    a, m = pre + "attn.", pre + "mlp."
    r, w, shift = cfg.stage_resolution(st), cfg.stage_window(st), cfg.block_shift(st, j)
    heads, eps = cfg.num_heads[st], cfg.ln_eps
    gg, _, _ = linear_backward(taps[m + "gelu"], p[m + "fc2.weight"], gy)
    gh = gelu_backward(taps[m + "fc1"], gg)
    out[m + "fc2"], out[m + "fc1"] = gy, gh
    gn2, _, _ = linear_backward(taps[pre + "norm2"], p[m + "fc1.weight"], gh)
    gx1 = gy + layernorm_backward(taps[pre + "add1"], p[pre + "norm2.weight"], eps, gn2)[0]
    gproj = _tokens_to_windows(gx1, r, w, shift)
    out[a + "proj"] = gproj
    go, _, _ = linear_backward(taps[a + "attn@v"], p[a + "proj.weight"], gproj)
    out[a + "attn@v"] = go
    bw, n, c = go.shape
    go4 = go.reshape(bw, n, heads, c // heads).transpose(0, 2, 1, 3)
    q, k, v, attn = taps[a + "q"], taps[a + "k"], taps[a + "v"], taps[a + "softmax"]
    out[a + "q@k"] = softmax_backward(attn, go4 @ np.swapaxes(v, -1, -2))
    gq, gk, gv = attention_core_backward(q, k, v, attn, go4)
    gqkv = np.stack([gq, gk, gv]).transpose(1, 3, 0, 2, 4).reshape(bw, n, 3 * c)
    gqkv_t = _windows_to_tokens(gqkv, r, w, shift)
    out[a + "qkv"] = gqkv_t  # in the token layout of its input tap norm1
    gn1, _, _ = linear_backward(taps[pre + "norm1"], p[a + "qkv.weight"], gqkv_t)
    gx: FloatArray = gx1 + layernorm_backward(x_in, p[pre + "norm1.weight"], eps, gn1)[0]
    return gx


def swin_forward_tapped(model: Any, images: Any, tap: TapFn | None = None
                        ) -> tuple[FloatArray, dict[str, FloatArray]]:
    """``(logits, taps)``: the model's own forward (``forward_with_taps`` with the hook
    ``tap``, every tap recorded after replacement), float64; the input of
    :func:`swin_backward`. Integer pixels carried as floats are passed as uint8 (a model
    with its normalisation folded takes uint8 pixels). SpecError for a model that is not a
    float64 Swin."""
    cfg = model.config
    if not isinstance(cfg, SwinConfig):
        raise SpecError(f"swin_forward_tapped: {cfg.name} is not a Swin")
    if np.dtype(model.dtype) != np.float64:
        raise SpecError(f"swin_forward_tapped: needs a float64 model, got {model.dtype}")
    x = np.asarray(images)
    if model.pixel_input and x.dtype.kind == "f":  # integer pixels carried as floats
        if not bool(np.all((x == np.rint(x)) & (x >= 0) & (x <= 255))):
            raise SpecError("swin_forward_tapped: this model takes uint8 pixels")
        x = x.astype(np.uint8)
    logits, t = model.forward_with_taps(x, tap=tap)
    taps = {k: np.asarray(v, dtype=np.float64) for k, v in t.items()}
    return np.asarray(logits, dtype=np.float64), taps


def swin_backward(model: Any, taps: dict[str, FloatArray], logits_grad: FloatArray
                  ) -> dict[str, FloatArray]:
    """``{op name: dL/d(op output)}`` from the taps of :func:`swin_forward_tapped` and
    ``logits_grad = dL/dlogits`` (B, K) (module docstring); ``taps`` is not modified, so
    several backward passes (one per class: the Fisher diagonal) share one forward."""
    cfg = model.config
    p = {k: np.asarray(v, dtype=np.float64) for k, v in model.params.items()}
    gl = np.asarray(logits_grad, dtype=np.float64)
    if gl.shape != taps["head"].shape:
        raise SpecError(f"swin_backward: loss gradient shape {gl.shape} != logits "
                        f"{taps['head'].shape}")
    out: dict[str, FloatArray] = {"head": gl}
    gpool, _, _ = linear_backward(taps["pool"], p["head.fc.weight"], gl)
    ntok = taps["norm"].shape[1]
    gnorm = np.broadcast_to(gpool[:, None, :] / ntok, taps["norm"].shape)
    nst = len(cfg.depths)
    last = f"layers.{nst - 1}.blocks.{cfg.depths[-1] - 1}.add2"
    g = layernorm_backward(taps[last], p["norm.weight"], cfg.ln_eps, gnorm)[0]
    for st in reversed(range(nst)):
        for j in reversed(range(cfg.depths[st])):
            if j > 0:
                x_in = taps[f"layers.{st}.blocks.{j - 1}.add2"]
            elif st > 0:
                x_in = taps[f"layers.{st}.downsample.reduction"]
            else:
                x_in = taps["patch_embed.norm"]
            g = _block_backward(cfg, p, taps, x_in, st, j, g, out)
        if st > 0:
            d = f"layers.{st}.downsample."
            out[d + "reduction"] = g
            gdn, _, _ = linear_backward(taps[d + "norm"], p[d + "reduction.weight"], g)
            prev = taps[f"layers.{st - 1}.blocks.{cfg.depths[st - 1] - 1}.add2"]
            merged = patch_merge(prev, cfg.stage_resolution(st))
            gm = layernorm_backward(merged, p[d + "norm.weight"], cfg.ln_eps, gdn)[0]
            g = _unmerge(gm, cfg.stage_resolution(st))
    out["patch_embed.proj"] = layernorm_backward(
        taps["patch_embed"], p["patch_embed.norm.weight"], cfg.ln_eps, g)[0]
    return out


def swin_op_output_grads(model: Any, images: Any, loss_grad: LossGrad
                         ) -> tuple[FloatArray, dict[str, FloatArray]]:
    """``(logits, {op name: dL/d(op output)})`` of a float64 Swin (module docstring)."""
    logits, taps = swin_forward_tapped(model, images)
    gl = np.asarray(loss_grad(logits), dtype=np.float64)
    if gl.shape != logits.shape:
        raise SpecError(f"swin_op_output_grads: loss gradient shape {gl.shape} != logits "
                        f"{logits.shape}")
    return logits, swin_backward(model, taps, gl)


__all__ = ["swin_backward", "swin_forward_tapped", "swin_op_output_grads"]
