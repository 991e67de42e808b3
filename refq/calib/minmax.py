"""The min-max QuantSpec that lowering tests, the golden program cases and the integer-gap
report use (calibration side; refq.methods' ``minmax`` recipe is the methods' own).

Per-channel symmetric min-max weights; per-tensor asymmetric min-max activations at every
linear/matmul input tap (the model input, uint8 pixels, excepted); optionally a base-2 log
quantizer (scale 1) on the softmax outputs. Statistics come from the float64 model with its
normalisation folded (uint8-pixel input) — the model lowering runs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from refq.calib.observers import absmax, minmax
from refq.errors import SpecError
from refq.nn.base import Model
from refq.quant import Log2Quantizer, Quantizer, QuantSpec, UniformQuantizer


def lowering_model(model: Model) -> Model:
    """``model`` with its normalisation folded (uint8 pixels in) and float64 parameters."""
    m = model if model.pixel_input else model.fold_normalization()
    return m if m.dtype == np.float64 else m.with_params(m.params, dtype=np.float64)


def minmax_spec(model: Model, calib: npt.ArrayLike, bits: int, *,
                softmax: str = "uniform") -> QuantSpec:
    """The min-max spec of ``model`` on ``calib`` images at W<bits>A<bits> (module
    docstring); ``softmax="log2"`` puts a base-2 log quantizer on the softmax outputs. Its
    method name is ``minmax-<softmax>``."""
    if softmax not in ("uniform", "log2"):
        raise SpecError(f"minmax_spec: softmax must be 'uniform' or 'log2', got {softmax!r}")
    m = lowering_model(model)
    _, taps = m.forward_with_taps(np.asarray(calib))
    w: dict[str, Quantizer] = {}
    acts: dict[str, Quantizer] = {}
    for op in m.ops():
        if op.weight:
            wt = m.params[op.weight]
            amax = absmax(wt.reshape(wt.shape[0], -1), axis=0)
            w[op.weight] = UniformQuantizer.from_minmax(-amax, amax, bits, symmetric=True,
                                                        axis=0)
        for t in op.inputs:
            if t == "input":
                continue
            if softmax == "log2" and t.endswith("attn.softmax"):
                acts[t] = Log2Quantizer(bits)
            else:
                lo, hi = minmax(taps[t])
                acts[t] = UniformQuantizer.from_minmax(float(lo), float(hi), bits)
    return QuantSpec(f"minmax-{softmax}", model.config.name, bits, bits, w, acts)


__all__ = ["lowering_model", "minmax_spec"]
