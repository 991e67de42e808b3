"""Model construction: :func:`create_model`, :func:`param_shapes`, :func:`random_params`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.nn.base import Model, Params
from refq.nn.configs import ModelConfig, SwinConfig, ViTConfig, get_config
from refq.nn.swin import SwinTransformer, swin_param_shapes
from refq.nn.vit import VisionTransformer, vit_param_shapes
from refq.nn.weights import load_weights, to_internal


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Expected parameter names (timm naming) and shapes of ``config``."""
    if isinstance(config, ViTConfig):
        return vit_param_shapes(config)
    return swin_param_shapes(config)


def random_params(config: ModelConfig, seed: int = 0, std: float = 0.02) -> Params:
    """Random float64 parameters for tests: weights, tokens and tables N(0, std^2); biases
    N(0, std^2); LayerNorm weights 1 + N(0, 0.1^2) (so every parameter matters)."""
    rng = np.random.default_rng(seed)
    out: Params = {}
    for k, shape in param_shapes(config).items():
        if "norm" in k and k.endswith(".weight"):
            out[k] = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            out[k] = std * rng.standard_normal(shape)
    return out


def create_model(
    name: str | ModelConfig,
    weights: str | Path | Mapping[str, npt.ArrayLike] | None = None,
    dtype: npt.DTypeLike = np.float64,
    *,
    weights_format: str = "auto",
    seed: int = 0,
    **overrides: Any,
) -> Model:
    """Build a model by timm name (see :data:`refq.nn.configs.CONFIGS`) or from a config.

    ``weights``: a ``.safetensors`` / ``.npz`` path (timm or HF keys, ``weights_format``
    "auto" | "timm" | "hf"), an in-memory state dict (same key conventions), or None for
    :func:`random_params` with ``seed``. ``overrides`` replace config fields (e.g.
    ``num_classes=10``, ``ln_eps=1e-12``). ``dtype``: float64 (default) or float32.
    Raises SpecError on an unknown name and on missing, unexpected or mis-shaped weights.
    """
    if isinstance(name, (ViTConfig, SwinConfig)):
        cfg: ModelConfig = name
        if overrides:
            import dataclasses

            cfg = dataclasses.replace(cfg, **overrides)
    elif isinstance(name, str):
        cfg = get_config(name, **overrides)
    else:
        raise SpecError(f"create_model: expected a model name or config, got {type(name)}")
    if weights is None:
        params: dict[str, Any] = dict(random_params(cfg, seed))
        source = f"random({seed})"
    elif isinstance(weights, (str, Path)):
        params = dict(load_weights(weights, cfg, weights_format))
        source = str(weights)
    elif isinstance(weights, Mapping):
        params = dict(to_internal(
            {k: np.asarray(v) for k, v in weights.items()}, cfg, weights_format
        ))
        source = "<state dict>"
    else:
        raise SpecError(f"create_model: weights must be a path, a dict or None, got "
                        f"{type(weights).__name__}")
    cls = VisionTransformer if isinstance(cfg, ViTConfig) else SwinTransformer
    return cls(cfg, params, dtype, source=source)


__all__ = ["create_model", "param_shapes", "random_params"]
