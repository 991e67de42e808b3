"""ViT / DeiT in NumPy: patch embedding, cls (+ distillation) token, pre-norm blocks.

Parameters use timm naming::

    cls_token (1, 1, C)   dist_token (1, 1, C) [distilled]   pos_embed (1, N, C)
    patch_embed.proj.weight (C, Cin, p, p)   patch_embed.proj.bias (C,)
    blocks.{i}.norm1.*  attn.qkv.*  attn.proj.*  norm2.*  mlp.fc1.*  mlp.fc2.*
    norm.weight / norm.bias   head.weight (K, C) / head.bias   head_dist.* [distilled]

The forward is timm's eval forward; for a distilled DeiT the logits are the mean of the
cls head and the distillation head. Tap names: see :mod:`refq.nn.base`.
"""

from __future__ import annotations

import numpy as np

from refq.errors import SpecError
from refq.nn.base import Model, OpInfo, Tapper
from refq.nn.blocks import attention, block_ops, block_param_shapes, block_tap_names, mlp
from refq.nn.configs import ModelConfig, ViTConfig
from refq.nn.layers import FloatArray, layernorm, linear, patchify


def vit_param_shapes(cfg: ViTConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names (timm naming) and shapes of a ViT/DeiT ``cfg``."""
    c, p = cfg.embed_dim, cfg.patch_size
    s: dict[str, tuple[int, ...]] = {"cls_token": (1, 1, c)}
    if cfg.distilled:
        s["dist_token"] = (1, 1, c)
    s["pos_embed"] = (1, cfg.num_patches + cfg.num_prefix_tokens, c)
    s["patch_embed.proj.weight"] = (c, cfg.in_chans, p, p)
    s["patch_embed.proj.bias"] = (c,)
    for i in range(cfg.depth):
        s.update(block_param_shapes(f"blocks.{i}.", c, cfg.mlp_hidden, cfg.qkv_bias))
    s["norm.weight"] = (c,)
    s["norm.bias"] = (c,)
    s["head.weight"] = (cfg.num_classes, c)
    s["head.bias"] = (cfg.num_classes,)
    if cfg.distilled:
        s["head_dist.weight"] = (cfg.num_classes, c)
        s["head_dist.bias"] = (cfg.num_classes,)
    return s


class VisionTransformer(Model):
    """NumPy ViT / DeiT (see the module docstring); construct with a :class:`ViTConfig`
    and a parameter dict, or through :func:`refq.nn.create_model`."""

    config: ViTConfig

    @staticmethod
    def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
        if not isinstance(config, ViTConfig):
            raise SpecError(f"VisionTransformer needs a ViTConfig, got {type(config).__name__}")
        return vit_param_shapes(config)

    def tap_names(self) -> list[str]:
        names = ["input", "patch_embed", "embed"]
        for i in range(self.config.depth):
            names += block_tap_names(f"blocks.{i}.")
        names += ["norm", "head"]
        if self.config.distilled:
            names += ["head_dist", "logits"]
        return names

    def ops(self) -> list[OpInfo]:
        ops = [OpInfo("patch_embed.proj", "linear", ("input",), "patch_embed.proj.weight",
                      "patch_embed", "patch_embed", ("image",))]
        for i in range(self.config.depth):
            ops += block_ops(f"blocks.{i}.")
        ops.append(OpInfo("head", "linear", ("norm",), "head.weight", "head", "head",
                          ("post_norm",), row=0))
        if self.config.distilled:
            ops.append(OpInfo("head_dist", "linear", ("norm",), "head_dist.weight",
                              "head_dist", "head", ("post_norm",), row=1))
        return ops

    def _forward(self, x: FloatArray, t: Tapper) -> FloatArray:
        cfg, p = self.config, self.params
        x = t("input", x)
        b = x.shape[0]
        w = p["patch_embed.proj.weight"]
        tok = linear(patchify(x, cfg.patch_size), w.reshape(w.shape[0], -1),
                     p["patch_embed.proj.bias"])
        tok = t("patch_embed", tok)
        prefix = [np.broadcast_to(p["cls_token"], (b, 1, cfg.embed_dim))]
        if cfg.distilled:
            prefix.append(np.broadcast_to(p["dist_token"], (b, 1, cfg.embed_dim)))
        h = t("embed", np.concatenate([*prefix, tok], axis=1) + p["pos_embed"])
        for i in range(cfg.depth):
            h = self._block(h, f"blocks.{i}.", t)
        h = t("norm", layernorm(h, p["norm.weight"], p["norm.bias"], cfg.ln_eps))
        logits = t("head", linear(h[:, 0], p["head.weight"], p["head.bias"]))
        if cfg.distilled:
            dist = t("head_dist", linear(h[:, 1], p["head_dist.weight"], p["head_dist.bias"]))
            logits = t("logits", (logits + dist) / 2)
        return logits

    def _block(self, h: FloatArray, pre: str, t: Tapper) -> FloatArray:
        cfg, p = self.config, self.params
        y = t(pre + "norm1", layernorm(h, p[pre + "norm1.weight"], p[pre + "norm1.bias"],
                                       cfg.ln_eps))
        h = t(pre + "add1", h + attention(y, p, pre, cfg.num_heads, t))
        y = t(pre + "norm2", layernorm(h, p[pre + "norm2.weight"], p[pre + "norm2.bias"],
                                       cfg.ln_eps))
        return t(pre + "add2", h + mlp(y, p, pre, t))


__all__ = ["VisionTransformer", "vit_param_shapes"]
