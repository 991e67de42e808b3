"""Quantizers fitted in execution order on the partially quantized model — the official
RepQ-ViT and I&S-ViT calibration protocol.

Their quantizer modules initialise themselves on the first tensor they see
(``if self.inited is False: self.delta, ... = self.init_quantization_scale(x)``), and the
calibration is ONE forward pass of the calibration batch with quantization switched on
(RepQ-ViT ``test_quant.py``: ``set_quant_state(q_model, input_quant=True,
weight_quant=True); q_model(calib_data)``; I&S-ViT: ``input_quant=True,
weight_quant=False`` on ``calib_data[:64]``). So each activation quantizer is fitted on its
input as it arrives: computed from tensors that every UPSTREAM quantizer has already
quantized, with the weights quantized or not as the caller says.

:func:`fit_in_order` does exactly that with a refq model: one forward over ``images`` with
the given weights fake-quantized and a tap hook that, at each tap named in ``fitters``
(first visit, in execution order), fits the quantizer on the tensor arriving there
(optionally only some token rows of it: a ViT head reads the class token), stores it and
applies it, so that everything downstream sees the quantized tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray
from refq.calib.fakequant import fake_quantized_model
from refq.errors import SpecError
from refq.quant import Quantizer

Fitter = Callable[[FloatArray], Quantizer]
"""``fit(x) -> quantizer`` for the calibration tensor ``x`` (float64) of one tap."""


def fit_in_order(
    model: Any,
    images: npt.ArrayLike,
    fitters: Mapping[str, Fitter],
    *,
    weights: Mapping[str, Quantizer] | None = None,
    params: Mapping[str, Any] | None = None,
    rows: Mapping[str, tuple[int, ...]] | None = None,
) -> dict[str, Quantizer]:
    """Fit one quantizer per tap of ``fitters`` in execution order (module docstring).

    ``weights``: weight quantizers applied for the whole pass (keyed by parameter name);
    ``params``: replacement float parameters; ``rows``: for a tap, the token rows (axis 1)
    its fitter sees (e.g. ``{"norm": (0,)}``: the class token a ViT head reads) — the
    quantizer is still applied to the whole tap. Returns ``{tap: quantizer}`` in fitting
    order. SpecError if a tap of ``fitters`` is never reached.
    """
    model_q, _ = fake_quantized_model(model, weights or {}, {}, params)
    sel = dict(rows or {})
    fitted: dict[str, Quantizer] = {}

    def tap(name: str, x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]] | None:
        fit = fitters.get(name)
        if fit is None:
            return None
        q = fitted.get(name)
        if q is None:
            v = np.asarray(x, dtype=np.float64)
            r = sel.get(name)
            q = fit(v if r is None else v[:, list(r)])
            fitted[name] = q
        return q.fake_quant(x).astype(x.dtype)

    model_q.forward(images, tap=tap)
    missing = sorted(set(fitters) - set(fitted))
    if missing:
        raise SpecError(f"fit_in_order: taps never reached: {missing[:5]}")
    return fitted


__all__ = ["Fitter", "fit_in_order"]
