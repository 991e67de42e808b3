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


def save_hf_vit(folder: Any, names: list[str], seed: int = 0, std: float = 0.05) -> Any:
    """A transformers ViTForImageClassification with a non-default config (64×64 input,
    patch 8, width 32, 2 blocks, 4 heads, MLP 64, ``len(names)`` labels named ``names``),
    float32 weights moved by N(0, std²), saved with ``save_pretrained`` into ``folder``
    together with a ViTImageProcessor (64×64, mean (0.4, 0.5, 0.6), std (0.2, 0.25, 0.3)).
    Returns the model in float64 (eval mode) for reference logits."""
    import torch
    import transformers

    cfg = transformers.ViTConfig(
        image_size=64, patch_size=8, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, num_labels=len(names),
        id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    with torch.random.fork_rng():  # transformers' init draws from the global generator
        torch.manual_seed(seed)
        model = transformers.ViTForImageClassification(cfg).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    model.save_pretrained(folder)
    transformers.ViTImageProcessor(
        size={"height": 64, "width": 64}, image_mean=list(HF_MEAN),
        image_std=list(HF_STD)).save_pretrained(folder)
    return model.double()


HF_MEAN = (0.4, 0.5, 0.6)
HF_STD = (0.2, 0.25, 0.3)


def hf_predict(model: Any, pixels: np.ndarray) -> np.ndarray:
    """Logits of a float64 transformers model on uint8 (B, 3, H, W) pixels normalised with
    HF_MEAN / HF_STD in float64."""
    import torch

    m = np.asarray(HF_MEAN)[:, None, None]
    s = np.asarray(HF_STD)[:, None, None]
    x = (pixels.astype(np.float64) / 255.0 - m) / s
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    return np.asarray(out.logits.numpy())


HF_NAMES = ["zebra", "ant", "cat", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay"]
"""Class names of :func:`make_hf_case`'s model: output order is not the sorted order."""


def make_hf_case(root: Any, n_images: int = 40) -> tuple[Any, Any]:
    """(model folder, image folder): :func:`save_hf_vit` with :data:`HF_NAMES`, and
    ``n_images`` random 64×64 RGB PNGs, each in the class folder the transformers model
    predicts for it — so refq must find 100 % FP top-1, and only if it reads the config,
    the preprocessing and the class names right (64×64 images pass the 64×64 transform
    unchanged)."""
    from pathlib import Path

    from PIL import Image

    root = Path(root)
    model = save_hf_vit(root / "model", HF_NAMES)
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (n_images, 3, 1, 1))  # per image, so the logits differ
    noise = rng.integers(-40, 41, (n_images, 3, 64, 64))
    pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
    preds = hf_predict(model, pixels).argmax(axis=-1)
    assert len(set(preds.tolist())) >= 3, preds  # the mapping of several classes is tested
    for i, (img, p) in enumerate(zip(pixels, preds, strict=True)):
        folder = root / "data" / HF_NAMES[int(p)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.transpose(1, 2, 0)).save(folder / f"{i:03d}.png")
    return root / "model", root / "data"
