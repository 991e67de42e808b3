"""refq.methods — method recipes (Contract C) and fake-quant simulation.

Recipes (:data:`RECIPES`, one module each): ``minmax`` (baseline), ``ptq4vit``,
``tsptq``, ``dopq``, ``ias``, ``repq``, ``fqvit``. Each module's docstring says which
quantizer sits on which tensor and how it is calibrated; docs/methods.md compares every
choice with the paper and the official code. Options are a frozen dataclass per recipe
(:func:`check_options` validates them before any work).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib.fakequant import fake_quantized_model
from refq.methods.context import Ctx
from refq.methods.registry import METHODS, RECIPES, Recipe, check_options, recipe
from refq.nn import TapFn
from refq.nn.base import Model
from refq.quant import QuantSpec
from refq.quant.base import check_bits


def _check_bits(w_bits: int, a_bits: int) -> None:
    check_bits(w_bits, "w_bits")
    check_bits(a_bits, "a_bits")


def recipe_options(method: str) -> frozenset[str]:
    """The option keys ``quantize_model(..., **opts)`` accepts for ``method`` (the fields
    of its options dataclass in :data:`RECIPES`; SpecError for an unknown method)."""
    return frozenset(recipe(method).options.keys())


def quantize_model(model: Model, method: str, w_bits: int, a_bits: int,
                   calib_images: npt.ArrayLike, seed: int = 0, **opts: Any) -> QuantSpec:
    """Run the recipe ``method`` (one of METHODS) on ``calib_images`` -> QuantSpec.

    ``opts`` are the recipe's options (its options dataclass, e.g.
    :class:`refq.methods.ptq4vit.PTQ4ViTOptions`); they are checked before any work."""
    r = recipe(method)
    _check_bits(w_bits, a_bits)
    o = r.options.from_mapping(opts)
    ctx = Ctx(model, w_bits, a_bits, calib_images)
    return r.run(ctx, o, seed)


def fake_quant(model: Model, spec: QuantSpec) -> tuple[Model, TapFn]:
    """(model_q, tap): weights fake-quantized (plus spec.params) through model.with_params,
    activations fake-quantized at their taps by ``tap``, and FQ-ViT's log-int softmax where
    ``spec.kernels["softmax"] == "lis"``
    (:func:`refq.calib.fakequant.fake_quantized_model`)."""
    model_q, tap = fake_quantized_model(model, spec.weights, spec.activations, spec.params,
                                        spec.kernels)
    return model_q, tap


def evaluate(model: Model, spec: QuantSpec | None, images: npt.ArrayLike,
             labels: npt.ArrayLike, batch: int = 100) -> float:
    """Top-1 accuracy (fraction) of the fake-quant model (FP model if spec is None)."""
    imgs = np.asarray(images)
    lab = np.asarray(labels)
    m, tap = (model, None) if spec is None else fake_quant(model, spec)
    correct = 0
    for i in range(0, imgs.shape[0], batch):
        logits = m.forward(imgs[i:i + batch], tap=tap)
        correct += int((np.argmax(logits, axis=-1) == lab[i:i + batch]).sum())
    return float(correct / max(1, int(imgs.shape[0])))


__all__ = ["METHODS", "RECIPES", "Recipe", "check_options", "evaluate", "fake_quant",
           "quantize_model", "recipe"]
