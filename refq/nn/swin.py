"""Swin Transformer in NumPy: window attention with relative position bias, shifted
windows (cyclic shift + attention mask of -100, as in the original code), patch merging.

Parameters use timm (>= 0.9) naming::

    patch_embed.proj.weight (C0, Cin, p, p) / .bias    patch_embed.norm.weight / .bias
    layers.{s}.downsample.norm.* (4 C_{s-1},)          [s >= 1: merging at stage start]
    layers.{s}.downsample.reduction.weight (C_s, 4 C_{s-1})   (no bias)
    layers.{s}.blocks.{j}.norm1.* attn.qkv.* attn.proj.* norm2.* mlp.fc1.* mlp.fc2.*
    layers.{s}.blocks.{j}.attn.relative_position_bias_table ((2 w - 1)^2, H_s)
    norm.weight / .bias   head.fc.weight (K, C_last) / head.fc.bias

Tokens are kept as (B, L, C) with L = R * R row-major over the stage's R x R grid.
Patch merging concatenates the 2x2 neighbours in the order (0,0), (1,0), (0,1), (1,1)
(row offset first), as timm, HF and the original code do.

Taps (W = windows per image, n = w^2 tokens per window)::

    input (B, Cin, S, S); patch_embed (B, L, C0); patch_embed.norm (B, L, C0)
    layers.{s}.downsample.norm (B, L_s, 4 C_{s-1}); layers.{s}.downsample.reduction (B, L_s, C_s)
    layers.{s}.blocks.{j}.norm1 (B, L, C)               [token layout, before shift/partition]
      .attn.qkv (B W, n, 3C); .attn.q|k|v (B W, H, n, d); .attn.q@k (B W, H, n, n) scaled
      .attn.logits (B W, H, n, n) = q@k + relative position bias
      .attn.masked = logits + shift mask (shifted-window blocks only)
      .attn.softmax; .attn.attn@v (B W, n, C); .attn.proj (B W, n, C)
      .add1 (B, L, C); .norm2; .mlp.fc1; .mlp.gelu; .mlp.fc2; .add2 (B, L, C)
    norm (B, L_last, C_last); pool (B, C_last) = token mean = head input; head (B, K)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.nn.base import Model, OpInfo, Tapper
from refq.nn.blocks import attention, block_ops, block_param_shapes, block_tap_names, mlp
from refq.nn.configs import ModelConfig, SwinConfig
from refq.nn.layers import FloatArray, layernorm, linear, patchify


def _check(cfg: SwinConfig) -> None:
    if len(cfg.depths) != len(cfg.num_heads) or not cfg.depths:
        raise SpecError(f"{cfg.name}: depths {cfg.depths} and num_heads {cfg.num_heads} "
                        "must be non-empty and of equal length")
    if cfg.img_size % cfg.patch_size:
        raise SpecError(f"{cfg.name}: img_size {cfg.img_size} is not a multiple of "
                        f"patch_size {cfg.patch_size}")
    for s in range(len(cfg.depths)):
        r, w = cfg.stage_resolution(s), cfg.stage_window(s)
        if r < 1 or r % w or (s < len(cfg.depths) - 1 and r % 2):
            raise SpecError(f"{cfg.name}: stage {s} resolution {r} is not divisible by its "
                            f"window {w} (or not even before a patch merging); padding is "
                            "not supported")
        if cfg.stage_dim(s) % cfg.num_heads[s]:
            raise SpecError(f"{cfg.name}: stage {s} width {cfg.stage_dim(s)} is not divisible "
                            f"by {cfg.num_heads[s]} heads")


def swin_param_shapes(cfg: SwinConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names (timm naming) and shapes of a Swin ``cfg``."""
    _check(cfg)
    c0, p = cfg.embed_dim, cfg.patch_size
    s: dict[str, tuple[int, ...]] = {
        "patch_embed.proj.weight": (c0, cfg.in_chans, p, p),
        "patch_embed.proj.bias": (c0,),
        "patch_embed.norm.weight": (c0,),
        "patch_embed.norm.bias": (c0,),
    }
    for st, depth in enumerate(cfg.depths):
        c = cfg.stage_dim(st)
        if st > 0:
            s[f"layers.{st}.downsample.norm.weight"] = (2 * c,)
            s[f"layers.{st}.downsample.norm.bias"] = (2 * c,)
            s[f"layers.{st}.downsample.reduction.weight"] = (c, 2 * c)
        w = cfg.stage_window(st)
        for j in range(depth):
            pre = f"layers.{st}.blocks.{j}."
            s.update(block_param_shapes(pre, c, int(c * cfg.mlp_ratio), cfg.qkv_bias))
            s[pre + "attn.relative_position_bias_table"] = ((2 * w - 1) ** 2, cfg.num_heads[st])
    s["norm.weight"] = (cfg.num_features,)
    s["norm.bias"] = (cfg.num_features,)
    s["head.fc.weight"] = (cfg.num_classes, cfg.num_features)
    s["head.fc.bias"] = (cfg.num_classes,)
    return s


def relative_position_index(w: int) -> npt.NDArray[np.int64]:
    """(w^2, w^2) index into the ((2w-1)^2, H) bias table (original Swin construction)."""
    coords = np.stack(np.meshgrid(np.arange(w), np.arange(w), indexing="ij")).reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :] + (w - 1)
    idx: npt.NDArray[np.int64] = (rel[0] * (2 * w - 1) + rel[1]).astype(np.int64)
    return idx


def window_partition(x: FloatArray, w: int) -> FloatArray:
    """(B, R, R, C) -> (B W, w^2, C), windows row-major, W = (R/w)^2."""
    b, r, _, c = x.shape
    y: FloatArray = x.reshape(b, r // w, w, r // w, w, c).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(-1, w * w, c)


def window_reverse(x: FloatArray, w: int, r: int) -> FloatArray:
    """(B W, w^2, C) -> (B, R, R, C): the inverse of :func:`window_partition`."""
    c = x.shape[-1]
    y: FloatArray = x.reshape(-1, r // w, r // w, w, w, c).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(-1, r, r, c)


def shift_mask(r: int, w: int, shift: int) -> npt.NDArray[np.float64]:
    """(W, w^2, w^2) additive mask: -100 between tokens from different regions of the
    cyclically shifted grid, 0 within a region (original Swin)."""
    img = np.zeros((1, r, r, 1))
    cnt = 0
    for hs in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
        for ws in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    mw = window_partition(img, w)[..., 0]
    diff = mw[:, None, :] - mw[:, :, None]
    return np.where(diff != 0, -100.0, 0.0)


def patch_merge(x: FloatArray, r: int) -> FloatArray:
    """(B, (2r)^2, C) -> (B, r^2, 4C): concat of the 2x2 neighbours (0,0),(1,0),(0,1),(1,1)."""
    b, _, c = x.shape
    g = x.reshape(b, 2 * r, 2 * r, c)
    y = np.concatenate([g[:, 0::2, 0::2], g[:, 1::2, 0::2], g[:, 0::2, 1::2], g[:, 1::2, 1::2]],
                       axis=-1)
    out: FloatArray = y.reshape(b, r * r, 4 * c)
    return out


class SwinTransformer(Model):
    """NumPy Swin Transformer (see the module docstring)."""

    config: SwinConfig

    def __init__(self, config: ModelConfig, params: Any, dtype: Any = np.float64,
                 **kw: Any) -> None:
        super().__init__(config, params, dtype, **kw)
        cfg = self.config
        self._bias: dict[str, FloatArray] = {}
        self._mask: dict[str, FloatArray | None] = {}
        for st, depth in enumerate(cfg.depths):
            w, r = cfg.stage_window(st), cfg.stage_resolution(st)
            idx = relative_position_index(w).reshape(-1)
            for j in range(depth):
                pre = f"layers.{st}.blocks.{j}."
                table = self.params[pre + "attn.relative_position_bias_table"]
                bias = table[idx].reshape(w * w, w * w, -1).transpose(2, 0, 1)
                self._bias[pre] = np.ascontiguousarray(bias)
                shift = cfg.block_shift(st, j)
                self._mask[pre] = (shift_mask(r, w, shift).astype(self.dtype) if shift
                                   else None)

    @staticmethod
    def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
        if not isinstance(config, SwinConfig):
            raise SpecError(f"SwinTransformer needs a SwinConfig, got {type(config).__name__}")
        return swin_param_shapes(config)

    def tap_names(self) -> list[str]:
        names = ["input", "patch_embed", "patch_embed.norm"]
        for st, depth in enumerate(self.config.depths):
            if st > 0:
                names += [f"layers.{st}.downsample.norm", f"layers.{st}.downsample.reduction"]
            for j in range(depth):
                names += block_tap_names(f"layers.{st}.blocks.{j}.", with_logits=True,
                                         with_mask=bool(self.config.block_shift(st, j)))
        return [*names, "norm", "pool", "head"]

    def ops(self) -> list[OpInfo]:
        ops = [OpInfo("patch_embed.proj", "linear", ("input",), "patch_embed.proj.weight",
                      "patch_embed", "patch_embed", ("image",))]
        for st, depth in enumerate(self.config.depths):
            if st > 0:
                d = f"layers.{st}.downsample."
                ops.append(OpInfo(d + "reduction", "linear", (d + "norm",),
                                  d + "reduction.weight", d + "reduction", "reduction",
                                  ("post_norm",)))
            for j in range(depth):
                ops += block_ops(f"layers.{st}.blocks.{j}.")
        ops.append(OpInfo("head", "linear", ("pool",), "head.fc.weight", "head", "head",
                          ("pooled",)))
        return ops

    def _forward(self, x: FloatArray, t: Tapper) -> FloatArray:
        cfg, p = self.config, self.params
        x = t("input", x)
        w = p["patch_embed.proj.weight"]
        h = t("patch_embed", linear(patchify(x, cfg.patch_size), w.reshape(w.shape[0], -1),
                                    p["patch_embed.proj.bias"]))
        h = t("patch_embed.norm", layernorm(h, p["patch_embed.norm.weight"],
                                            p["patch_embed.norm.bias"], cfg.ln_eps))
        for st, depth in enumerate(cfg.depths):
            r = cfg.stage_resolution(st)
            if st > 0:
                d = f"layers.{st}."
                h = t(d + "downsample.norm", layernorm(
                    patch_merge(h, r), p[d + "downsample.norm.weight"],
                    p[d + "downsample.norm.bias"], cfg.ln_eps))
                h = t(d + "downsample.reduction", linear(h, p[d + "downsample.reduction.weight"]))
            for j in range(depth):
                h = self._block(h, st, j, t)
        h = t("norm", layernorm(h, p["norm.weight"], p["norm.bias"], cfg.ln_eps))
        pooled = t("pool", h.mean(axis=1))
        return t("head", linear(pooled, p["head.fc.weight"], p["head.fc.bias"]))

    def _block(self, h: FloatArray, st: int, j: int, t: Tapper) -> FloatArray:
        cfg, p = self.config, self.params
        pre = f"layers.{st}.blocks.{j}."
        r, w, shift = cfg.stage_resolution(st), cfg.stage_window(st), cfg.block_shift(st, j)
        b, n, c = h.shape
        y = t(pre + "norm1", layernorm(h, p[pre + "norm1.weight"], p[pre + "norm1.bias"],
                                       cfg.ln_eps))
        g = y.reshape(b, r, r, c)
        if shift:
            g = np.roll(g, (-shift, -shift), axis=(1, 2))
        a = attention(window_partition(g, w), p, pre, cfg.num_heads[st], t, self._bias[pre],
                      self._mask[pre])
        g = window_reverse(a, w, r)
        if shift:
            g = np.roll(g, (shift, shift), axis=(1, 2))
        h = t(pre + "add1", h + g.reshape(b, n, c))
        y = t(pre + "norm2", layernorm(h, p[pre + "norm2.weight"], p[pre + "norm2.bias"],
                                       cfg.ln_eps))
        return t(pre + "add2", h + mlp(y, p, pre, t))


__all__ = [
    "SwinTransformer",
    "patch_merge",
    "relative_position_index",
    "shift_mask",
    "swin_param_shapes",
    "window_partition",
    "window_reverse",
]
