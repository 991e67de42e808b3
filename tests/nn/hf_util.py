"""Helpers building small random Hugging Face models and matching refq configs (torch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from refq.nn.configs import SwinConfig, ViTConfig


def perturb(model: Any, seed: int = 0, std: float = 0.05) -> Any:
    """Float64, eval mode, every parameter (LayerNorm ones and zero biases too) moved by
    N(0, std^2) so that each one matters."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def state_dict_np(model: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def vit_config_from_hf(c: Any, distilled: bool, family: str) -> ViTConfig:
    return ViTConfig(
        name=f"hf_{family}", img_size=c.image_size, patch_size=c.patch_size,
        in_chans=c.num_channels, num_classes=c.num_labels, embed_dim=c.hidden_size,
        depth=c.num_hidden_layers, num_heads=c.num_attention_heads,
        mlp_ratio=c.intermediate_size / c.hidden_size, qkv_bias=c.qkv_bias,
        distilled=distilled, ln_eps=c.layer_norm_eps, family=family,
    )


def swin_config_from_hf(c: Any) -> SwinConfig:
    return SwinConfig(
        name="hf_swin", img_size=c.image_size, patch_size=c.patch_size,
        in_chans=c.num_channels, num_classes=c.num_labels, embed_dim=c.embed_dim,
        depths=tuple(c.depths), num_heads=tuple(c.num_heads), window_size=c.window_size,
        mlp_ratio=c.mlp_ratio, qkv_bias=c.qkv_bias, ln_eps=c.layer_norm_eps,
    )
