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

from refq.calib.lis import log_int_softmax
from refq.errors import SpecError
from refq.files.schema import did_you_mean
from refq.nn.layers import TapFn
from refq.quant import Log2Quantizer, Quantizer, UniformQuantizer

SOFTMAX_SIMULATED = ("lis",)
"""``kernels["softmax"]`` values the simulation realises itself (others are the lowering's
business and leave the float softmax in place)."""


def fake_quantized_model(
    model: Any,
    weights: Mapping[str, Quantizer],
    activations: Mapping[str, Quantizer],
    params: Mapping[str, Any] | None = None,
    kernels: Mapping[str, str] | None = None,
) -> tuple[Any, TapFn]:
    """``(model_q, tap)``: ``model`` with its parameters overridden by ``params`` (e.g. a
    reparameterized LayerNorm), then each weight named in ``weights`` replaced by
    ``q.fake_quant`` of its float64 value (through ``model.with_params``), and a tap hook that
    replaces each tap named in ``activations`` by ``q.fake_quant`` of it (same dtype); every
    other parameter and tap is left as it is. Raises SpecError for a weight name that is
    neither a model parameter nor in ``params``, and for an activation name that is not a
    tap of the model (a misspelled tap must not drop its quantizer silently).

    ``kernels={"softmax": "lis"}`` (FQ-ViT): every ``….attn.softmax`` tap is replaced by
    FQ-ViT's log-int softmax (:func:`refq.calib.lis.log_int_softmax`) of the same
    attention's quantized logits — the last of its ``attn.q@k``, ``attn.logits`` (Swin:
    plus the relative position bias) and ``attn.masked`` (plus the shift mask) taps, after
    their quantizers — with the scale of the quantizer of ``attn.logits`` if the spec has
    one, else of ``attn.q@k`` (a per-tensor UniformQuantizer: the LIS input scale), and the
    code width of the softmax tap's quantizer (a base-2 Log2Quantizer); the float softmax
    is discarded."""
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
    lis = _lis_taps(acts, kernels)
    logits: dict[str, npt.NDArray[Any]] = {}

    def tap(name: str, x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]] | None:
        src = lis.get(name)
        if src is not None:
            s, bits = src[1], src[2]
            return log_int_softmax(logits.pop(src[0]), s, bits).astype(x.dtype)
        q = acts.get(name)
        out = None if q is None else q.fake_quant(x).astype(x.dtype)
        if lis and name.endswith(_LIS_SOURCES):
            pre = name[: name.rindex("attn.") + len("attn.")]
            logits[pre] = np.asarray(x if out is None else out, dtype=np.float64)
        return out

    return model_q, tap


_LIS_SOURCES = ("attn.q@k", "attn.logits", "attn.masked")
"""The taps of the softmax input, in forward order: the LIS reads the last one called."""


def _lis_taps(acts: Mapping[str, Quantizer], kernels: Mapping[str, str] | None
              ) -> dict[str, tuple[str, float, int]]:
    """``{softmax tap: (logits tap, logits scale, code bits)}`` when the softmax kernel is
    FQ-ViT's LIS; SpecError if a softmax tap lacks the quantizers LIS needs."""
    variant = (kernels or {}).get("softmax")
    if variant is None or variant not in SOFTMAX_SIMULATED:
        return {}
    out: dict[str, tuple[str, float, int]] = {}
    for name, q in acts.items():
        if not name.endswith("attn.softmax"):
            continue
        pre = name[: -len("softmax")]
        src = pre + "logits" if pre + "logits" in acts else pre + "q@k"
        ql = acts.get(src)
        if not isinstance(q, Log2Quantizer) or q.base != "2":
            raise SpecError(f"lis softmax: {name} needs a base-2 Log2Quantizer (its codes)")
        if not isinstance(ql, UniformQuantizer) or ql.axis is not None:
            raise SpecError(f"lis softmax: {src} needs a per-tensor UniformQuantizer (the "
                            "LIS input scale)")
        out[name] = (pre, float(ql.scale), q.bits)
    return out


__all__ = ["SOFTMAX_SIMULATED", "fake_quantized_model"]
