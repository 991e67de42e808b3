"""refq.nn — the float NumPy ViT family (ViT, DeiT, Swin), weights, data and the bundled model.

Public API::

    create_model(name, weights=None, dtype=np.float64, **overrides) -> Model
    model.forward(x, tap=None) -> logits                  # tap(name, array) -> array | None
    model.forward_with_taps(x, tap=None, names=None) -> (logits, {name: array})
    model.tap_names(), model.ops(), model.fold_normalization(), model.with_params(params)
    load_bundled() -> (model, DigitsData)                 # the small digits DeiT
    load_weights / load_state_dict / save_weights         # .safetensors / .npz, timm or HF keys
    ImageFolder, load_image, eval_transform, fold_normalization

refq.nn imports nothing from refq.quant, refq.calib, refq.methods or refq.program:
quantizers plug in from the outside through the tap hook (see :mod:`refq.nn.base`).
"""

from __future__ import annotations

from refq.nn.base import Model, OpInfo
from refq.nn.bundled import DigitsData, load_bundled, load_digits
from refq.nn.configs import CONFIGS, SwinConfig, ViTConfig, get_config
from refq.nn.data import (
    EvalTransform,
    ImageDataError,
    ImageFolder,
    eval_transform,
    load_image,
    normalize,
)
from refq.nn.factory import create_model, param_shapes, random_params
from refq.nn.layers import FloatArray, TapFn
from refq.nn.pixels import fold_normalization
from refq.nn.swin import SwinTransformer
from refq.nn.vit import VisionTransformer
from refq.nn.weights import load_state_dict, load_weights, save_weights, to_internal

__all__ = [
    "CONFIGS",
    "DigitsData",
    "EvalTransform",
    "FloatArray",
    "ImageDataError",
    "ImageFolder",
    "Model",
    "OpInfo",
    "SwinConfig",
    "SwinTransformer",
    "TapFn",
    "ViTConfig",
    "VisionTransformer",
    "create_model",
    "eval_transform",
    "fold_normalization",
    "get_config",
    "load_bundled",
    "load_digits",
    "load_image",
    "load_state_dict",
    "load_weights",
    "normalize",
    "param_shapes",
    "random_params",
    "save_weights",
    "to_internal",
]
