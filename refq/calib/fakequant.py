"""A float model with some of its weights and taps fake-quantized (float64, calibration side).

The one construction behind :func:`refq.methods.fake_quant` (a whole QuantSpec) and
:func:`refq.calib.hessian.sequential_state` (the quantizers chosen so far in a sequential
calibration).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.files.schema import did_you_mean
from refq.nn.layers import TapFn
from refq.quant import Quantizer


def fake_quantized_model(
    model: Any,
    weights: Mapping[str, Quantizer],
    activations: Mapping[str, Quantizer],
    params: Mapping[str, Any] | None = None,
) -> tuple[Any, TapFn]:
    """``(model_q, tap)``: ``model`` with its parameters overridden by ``params`` (e.g. a
    reparameterized LayerNorm), then each weight named in ``weights`` replaced by
    ``q.fake_quant`` of its float64 value (through ``model.with_params``), and a tap hook that
    replaces each tap named in ``activations`` by ``q.fake_quant`` of it (same dtype); every
    other parameter and tap is left as it is. Raises SpecError for a weight name that is
    neither a model parameter nor in ``params``, and for an activation name that is not a
    tap of the model (a misspelled tap must not drop its quantizer silently)."""
    merged: dict[str, Any] = {**model.params, **(params or {})}
    for name, q in weights.items():
        if name not in merged:
            raise SpecError(f"fake quantization: the model has no parameter {name!r}")
        merged[name] = q.fake_quant(np.asarray(merged[name], dtype=np.float64))
    model_q = model.with_params(merged)
    acts = dict(activations)
    taps = set(model.tap_names())
    for name in sorted(set(acts) - taps):
        raise SpecError(f"fake quantization: the model has no tap {name!r}"
                        f"{did_you_mean(name, taps)}")

    def tap(name: str, x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]] | None:
        q = acts.get(name)
        return None if q is None else q.fake_quant(x).astype(x.dtype)

    return model_q, tap


__all__ = ["fake_quantized_model"]
