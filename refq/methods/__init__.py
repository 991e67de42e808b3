"""refq.methods — method recipes (Contract C) and fake-quant simulation.

Recipes: ``minmax`` (below) and the six published ones in :mod:`refq.methods.recipes`
(ptq4vit, tsptq, dopq, ias, repq, fqvit; that module's docstring says which quantizer
sits on which tensor). ``minmax``: every linear
weight gets a symmetric signed per-output-channel (axis 0) UniformQuantizer from its
min/max; every activation input tap of every linear/matmul in ``model.ops()`` gets an
asymmetric per-tensor UniformQuantizer from the min/max seen on the calibration images.
Rounding half_even throughout.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib.fakequant import fake_quantized_model
from refq.errors import SpecError
from refq.nn import TapFn
from refq.nn.base import Model
from refq.quant import QuantSpec, UniformQuantizer
from refq.quant.base import check_bits

METHODS: tuple[str, ...] = ("minmax", "ptq4vit", "tsptq", "dopq", "ias", "repq", "fqvit")


def _check_bits(w_bits: int, a_bits: int) -> None:
    check_bits(w_bits, "w_bits")
    check_bits(a_bits, "a_bits")


def _minmax(model: Model, w_bits: int, a_bits: int, calib_images: npt.ArrayLike) -> QuantSpec:
    ops = model.ops()
    act_taps = sorted({t for op in ops for t in op.inputs})
    _, taps = model.forward_with_taps(calib_images, names=act_taps)
    weights: dict[str, Any] = {}
    for op in ops:
        if op.weight is None:
            continue
        w = np.asarray(model.params[op.weight], dtype=np.float64)
        red = tuple(range(1, w.ndim))
        weights[op.weight] = UniformQuantizer.from_minmax(
            w.min(axis=red), w.max(axis=red), w_bits, symmetric=True, axis=0)
    acts: dict[str, Any] = {}
    for name in act_taps:
        x = taps[name]
        acts[name] = UniformQuantizer.from_minmax(float(x.min()), float(x.max()), a_bits)
    return QuantSpec(method="minmax", model=model.config.name, w_bits=w_bits, a_bits=a_bits,
                     weights=weights, activations=acts,
                     notes={"calib_images": int(np.asarray(calib_images).shape[0])})


def recipe_options(method: str) -> frozenset[str]:
    """The option keys ``quantize_model(..., **opts)`` accepts for ``method``."""
    if method not in METHODS:
        raise SpecError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if method == "minmax":
        return frozenset()
    from refq.methods.recipes import OPTIONS
    return OPTIONS[method]


def quantize_model(model: Model, method: str, w_bits: int, a_bits: int,
                   calib_images: npt.ArrayLike, seed: int = 0, **opts: Any) -> QuantSpec:
    """Run the recipe ``method`` (one of METHODS) on ``calib_images`` -> QuantSpec."""
    if method not in METHODS:
        raise SpecError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    _check_bits(w_bits, a_bits)
    if method == "minmax":
        if opts:
            raise SpecError(f"method {method!r}: unknown options {sorted(opts)}")
        return _minmax(model, w_bits, a_bits, calib_images)
    from refq.methods.recipes import run_recipe
    return run_recipe(model, method, w_bits, a_bits, calib_images, seed, opts)


def fake_quant(model: Model, spec: QuantSpec) -> tuple[Model, TapFn]:
    """(model_q, tap): weights fake-quantized (plus spec.params) through model.with_params,
    activations fake-quantized at their taps by ``tap``
    (:func:`refq.calib.fakequant.fake_quantized_model`)."""
    model_q, tap = fake_quantized_model(model, spec.weights, spec.activations, spec.params)
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
