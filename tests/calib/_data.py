"""Small synthetic ViT-like tensors for the calibration tests."""

from __future__ import annotations

import numpy as np
from scipy.special import erf


def softmax_probs(rng: np.random.Generator, shape: tuple[int, ...] = (1, 2, 40, 40),
                  scale: float = 3.0) -> np.ndarray:
    z = scale * rng.standard_normal(shape)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def gelu_acts(rng: np.random.Generator, shape: tuple[int, ...] = (2, 30, 64)) -> np.ndarray:
    pre = 1.5 * rng.standard_normal(shape)
    out: np.ndarray = 0.5 * pre * (1.0 + erf(pre / np.sqrt(2.0)))
    return out


def ln_inputs(rng: np.random.Generator, shape: tuple[int, ...] = (2, 40, 32),
              outliers: tuple[int, ...] = (3, 17), factor: float = 40.0) -> np.ndarray:
    c = shape[-1]
    x = 0.5 * rng.standard_normal(c) + rng.uniform(0.5, 1.5, c) * rng.standard_normal(shape)
    for k in outliers:
        x[..., k] = x[..., k] * factor + 3.0
    return x
