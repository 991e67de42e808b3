"""Whole-model forward + backward of the NumPy ViT/DeiT (refq.nn.vit) in float64.

``vit_op_output_grads(model, images, loss_grad)`` runs the float forward pass (no taps),
evaluates ``loss_grad(logits) -> dL/dlogits`` and back-propagates through the head, the final
LayerNorm and every pre-norm block, returning the gradient of the loss w.r.t. the OUTPUT of
every op of ``model.ops()``, keyed by op name (patch_embed.proj,
blocks.i.attn.qkv / q@k / attn@v / proj,
blocks.i.mlp.fc1 / fc2, head, head_dist). Cost: one forward and one backward, about three
forward-pass equivalents in FLOPs.

``vit_forward_tapped(model, images, tap)`` runs the model's OWN forward
(``model.forward_with_taps``) with a tap hook that may replace tensors (e.g. fake
quantization of some activations) and assembles the same cache from the recorded tensors
(after replacement), so that :func:`vit_backward` back-propagates through the network at
those (e.g. partially quantized) activations. The backward treats every tap replacement as
the identity; it is therefore exact for the gradient w.r.t. the output of an op when no tap
on any path from that output to the logits replaces its tensor (as in PTQ4ViT's sequential
calibration, where only ops BEFORE the current one are quantized).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.nn.backward import BlockCache, block_backward, block_forward, layernorm_backward
from refq.nn.layers import FloatArray, TapFn, layernorm, linear, patchify

LossGrad = Callable[[FloatArray], FloatArray]
"""``loss_grad(logits) -> dL/dlogits`` (same shape)."""


def _require_vit(cfg: Any, who: str) -> None:
    """SpecError unless ``cfg`` is a ViT/DeiT configuration (depth and patches, no windows)."""
    if not hasattr(cfg, "depth") or not hasattr(cfg, "patch_size") or hasattr(cfg, "window_size"):
        raise SpecError(f"{who}: only ViT/DeiT models are supported")


def vit_forward_cached(
    model: Any, images: FloatArray
) -> tuple[FloatArray, dict[str, Any]]:
    """Float64 forward pass of a ViT/DeiT model returning ``(logits, cache)``."""
    cfg = model.config
    p: dict[str, FloatArray] = {
        k: np.asarray(v, dtype=np.float64) for k, v in model.params.items()
    }
    _require_vit(cfg, "vit_forward_cached")
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


_BLOCK_TAPS = {"n1": "norm1", "q": "attn.q", "k": "attn.k", "v": "attn.v",
               "attn": "attn.softmax", "o": "attn.attn@v", "x1": "add1", "n2": "norm2",
               "h": "mlp.fc1", "g": "mlp.gelu"}
"""BlockCache value key -> tap name (under ``blocks.{i}.``) holding that tensor."""


def vit_cache_from_taps(model: Any, taps: Mapping[str, Any]) -> dict[str, Any]:
    """A :func:`vit_backward` cache assembled from tensors recorded by
    ``model.forward_with_taps`` (every tap, AFTER any replacement by the tap hook), with the
    model's own parameters in float64. The block input of block 0 is ``embed``, of block i
    ``blocks.{i-1}.add2``; the final LayerNorm input is the last ``add2``, its output
    ``norm``. Exactly the tensors the forward used, so the backward is the chain rule at
    those activations (taps' replacements count as the identity). Raises SpecError for a
    non-ViT model or a missing tap."""
    cfg = model.config
    _require_vit(cfg, "vit_cache_from_taps")

    def get(name: str) -> FloatArray:
        if name not in taps:
            raise SpecError(f"vit_cache_from_taps: tap {name!r} was not recorded")
        a: FloatArray = np.asarray(taps[name], dtype=np.float64)
        return a

    p: dict[str, FloatArray] = {
        k: np.asarray(v, dtype=np.float64) for k, v in model.params.items()
    }
    caches: list[BlockCache] = []
    h = get("embed")
    for i in range(cfg.depth):
        pre = f"blocks.{i}."
        caches.append(BlockCache(h, {k: get(pre + t) for k, t in _BLOCK_TAPS.items()}))
        h = get(pre + "add2")
    return {"p": p, "blocks": caches, "h": h, "hn": get("norm"),
            "n_prefix": 2 if cfg.distilled else 1}


def vit_forward_tapped(
    model: Any, images: FloatArray, tap: TapFn | None
) -> tuple[FloatArray, dict[str, Any], dict[str, FloatArray]]:
    """``(logits, cache, taps)``: the model's own forward (``model.forward_with_taps`` with the
    hook ``tap``, every tap recorded after replacement) and the matching
    :func:`vit_backward` cache (:func:`vit_cache_from_taps`). The model must be float64
    (SpecError otherwise), so the recorded tensors are those of the float64 forward."""
    if np.dtype(model.dtype) != np.float64:
        raise SpecError(f"vit_forward_tapped: needs a float64 model, got {model.dtype}")
    logits, taps = model.forward_with_taps(np.asarray(images, dtype=np.float64), tap=tap)
    return (np.asarray(logits, dtype=np.float64), vit_cache_from_taps(model, taps),
            {k: np.asarray(v, dtype=np.float64) for k, v in taps.items()})


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


__all__ = ["LossGrad", "vit_backward", "vit_cache_from_taps", "vit_forward_cached",
           "vit_forward_tapped", "vit_op_output_grads"]
