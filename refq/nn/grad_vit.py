"""Whole-model forward + backward of the NumPy ViT/DeiT (refq.nn.vit) in float64.

``vit_op_output_grads(model, images, loss_grad)`` runs the float forward pass (no taps),
evaluates ``loss_grad(logits) -> dL/dlogits`` and back-propagates through the head, the final
LayerNorm and every pre-norm block, returning the gradient of the loss w.r.t. the OUTPUT of
every op of ``model.ops()``, keyed by op name (patch_embed.proj,
blocks.i.attn.qkv / q@k / attn@v / proj,
blocks.i.mlp.fc1 / fc2, head, head_dist). Cost: one forward and one backward, about three
forward-pass equivalents in FLOPs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.nn.backward import BlockCache, block_backward, block_forward, layernorm_backward
from refq.nn.layers import FloatArray, layernorm, linear, patchify

LossGrad = Callable[[FloatArray], FloatArray]
"""``loss_grad(logits) -> dL/dlogits`` (same shape)."""


def vit_forward_cached(
    model: Any, images: FloatArray
) -> tuple[FloatArray, dict[str, Any]]:
    """Float64 forward pass of a ViT/DeiT model returning ``(logits, cache)``."""
    cfg = model.config
    p: dict[str, FloatArray] = {
        k: np.asarray(v, dtype=np.float64) for k, v in model.params.items()
    }
    if not hasattr(cfg, "depth") or not hasattr(cfg, "patch_size") or hasattr(cfg, "window_size"):
        raise SpecError("vit_forward_cached: only ViT/DeiT models are supported")
    x: FloatArray = np.asarray(images, dtype=np.float64)
    b = x.shape[0]
    w = p["patch_embed.proj.weight"]
    tok = linear(patchify(x, cfg.patch_size), w.reshape(w.shape[0], -1),
                 p["patch_embed.proj.bias"])
    prefix = [np.broadcast_to(p["cls_token"], (b, 1, cfg.embed_dim))]
    if cfg.distilled:
        prefix.append(np.broadcast_to(p["dist_token"], (b, 1, cfg.embed_dim)))
    h: FloatArray = np.concatenate([*prefix, tok], axis=1) + p["pos_embed"]
    caches: list[BlockCache] = []
    for i in range(cfg.depth):
        h, c = block_forward(h, p, f"blocks.{i}.", cfg.num_heads, cfg.ln_eps)
        caches.append(c)
    hn = layernorm(h, p["norm.weight"], p["norm.bias"], cfg.ln_eps)
    logits = linear(hn[:, 0], p["head.weight"], p["head.bias"])
    if cfg.distilled:
        logits = (logits + linear(hn[:, 1], p["head_dist.weight"], p["head_dist.bias"])) / 2
    cache = {"p": p, "blocks": caches, "h": h, "hn": hn, "n_prefix": len(prefix)}
    return logits, cache


def vit_op_output_grads(
    model: Any, images: FloatArray, loss_grad: LossGrad
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """``(logits, {op name: dL/d(op output)})`` for a ViT/DeiT model (see module docstring)."""
    logits, cache = vit_forward_cached(model, images)
    gl = np.asarray(loss_grad(logits), dtype=np.float64)
    return logits, vit_backward(model, cache, gl)


def vit_backward(
    model: Any, cache: dict[str, Any], logits_grad: FloatArray
) -> dict[str, FloatArray]:
    """``{op name: dL/d(op output)}`` from a :func:`vit_forward_cached` cache and
    ``logits_grad = dL/dlogits`` (B, K). The cache is not modified, so several backward
    passes (e.g. one per class) may share one forward. The map is linear in ``logits_grad``
    and image ``b``'s gradients depend only on ``logits_grad[b]`` (no op couples images).
    Raises SpecError when the gradient's shape is not the logits'."""
    cfg = model.config
    p = cache["p"]
    gl = np.asarray(logits_grad, dtype=np.float64)
    hn = cache["hn"]
    if gl.shape != (hn.shape[0], p["head.weight"].shape[0]):
        raise SpecError(f"vit_backward: loss gradient shape {gl.shape} != logits "
                        f"{(hn.shape[0], p['head.weight'].shape[0])}")
    out: dict[str, FloatArray] = {}
    ghn = np.zeros_like(hn)
    if cfg.distilled:
        out["head"] = gl / 2
        out["head_dist"] = gl / 2
        ghn[:, 0] = out["head"] @ p["head.weight"]
        ghn[:, 1] = out["head_dist"] @ p["head_dist.weight"]
    else:
        out["head"] = gl
        ghn[:, 0] = gl @ p["head.weight"]
    g, _, _ = layernorm_backward(cache["h"], p["norm.weight"], cfg.ln_eps, ghn)
    for i in reversed(range(cfg.depth)):
        g, _ = block_backward(cache["blocks"][i], p, f"blocks.{i}.", cfg.num_heads, cfg.ln_eps,
                              g, out_grads=out)
    out["patch_embed.proj"] = g[:, cache["n_prefix"]:]
    return out


__all__ = ["LossGrad", "vit_backward", "vit_forward_cached", "vit_op_output_grads"]
