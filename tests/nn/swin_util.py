"""A small random-weight Swin (refq.nn, no torch) shared by the Swin recipe and lowering
tests: image 16, patch 2, embed 8, depths (2, 2), heads (2, 4), window 4 — stage 0 (8 x 8
tokens, 4 windows) shifts its second block, stage 1 (4 x 4) has one window equal to the
resolution (no shift)."""

from __future__ import annotations

import numpy as np

from refq.nn.base import Model
from refq.nn.configs import SwinConfig
from refq.nn.factory import create_model
from refq.nn.swin import swin_param_shapes

TINY = SwinConfig(name="swin_rand_tiny", img_size=16, patch_size=2, embed_dim=8, depths=(2, 2),
                  num_heads=(2, 4), window_size=4, num_classes=5)


def random_swin(cfg: SwinConfig = TINY, seed: int = 0, std: float = 0.3) -> Model:
    """Gaussian weights (LayerNorm gains around 1, biases and position-bias tables too),
    normalisation folded so that the model takes uint8 pixels."""
    rng = np.random.default_rng(seed)
    params = {}
    for k, s in swin_param_shapes(cfg).items():
        v = rng.normal(0.0, std, s)
        if "norm" in k and k.endswith(".weight"):
            v = 1.0 + v
        params[k] = v
    return create_model(cfg, params).fold_normalization()


def pixels(n: int, size: int = 16, seed: int = 1) -> np.ndarray:
    """``n`` uint8 images (n, 3, size, size): a colour per image plus noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 3, 1, 1))
    noise = rng.integers(-60, 61, (n, 3, size, size))
    return np.clip(base + noise, 0, 255).astype(np.uint8)
