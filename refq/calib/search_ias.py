"""I&S-ViT initialisations (Zhong et al., arXiv 2311.10126; github.com/zysxmu/IaS-ViT):
percentile-MSE init of the asymmetric uniform quantizer, and the SULQ η search.

Uniform (asymmetric): s = (max - min)/(2^b - 1), z = round(-min/s), q = clamp(round(x/s) + z,
0, 2^b - 1), x̂ = (q - z)·s, round = half to even (torch.round). The init tries
(max, min) = (quantile(x, p), quantile(x, 1-p)) (linear interpolation) for each p of a
candidate list and keeps the lowest MSE ``mean((x - x̂)²)``; the FIRST candidate wins on
ties (the code updates only on a strictly smaller score). Per channel (``axis`` given)
every channel is searched on its own values. A zero range gets s = 1e-8 (refq's guard).

SULQ (:func:`sulq_eta_search`): η over SULQ_ETAS, y range = min/max of log2(x + η) (the
official code searches η only, not the range), each η scored by MSE with the code's init
formula; a code-mode quantizer is then built from the chosen η and range, as the official
forward pass uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float, channels_first, check_bits, first_argmin
from refq.calib.grid import grid_search
from refq.calib.metrics import Metric
from refq.calib.observers import _quantile_sorted
from refq.errors import SpecError
from refq.quant import UniformQuantizer
from refq.quant.sulq import ShiftUniformLog2Quantizer

ACT_PERCENTILES: tuple[float, ...] = (0.999, 0.9999, 0.99999)
WEIGHT_PERCENTILES: tuple[float, ...] = (0.97, 0.98, 0.99, 0.995, 0.9995, 0.9997, 0.9999,
                                         0.99995, 0.99999)
SULQ_ETAS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.5,
                                1.0)
MIN_SCALE = 1e-8


def asym_params(lo: npt.ArrayLike, hi: npt.ArrayLike, bits: int) -> tuple[FloatArray, FloatArray]:
    """(s, z) of the asymmetric uniform quantizer of range [lo, hi]: s = max((hi-lo)/(2^b-1),
    1e-8), z = round_half_even(-lo/s) (a float64 holding an integer; not clamped)."""
    lo_a, hi_a = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    s = np.maximum((hi_a - lo_a) / (2.0**bits - 1), MIN_SCALE)
    return s, np.rint(-lo_a / s)


def asym_fake_quant(x: FloatArray, s: npt.ArrayLike, z: npt.ArrayLike, bits: int) -> FloatArray:
    """(clamp(round_half_even(x/s) + z, 0, 2^b-1) - z)·s, s and z broadcasting against x."""
    sa, za = np.asarray(s, np.float64), np.asarray(z, np.float64)
    q = np.clip(np.rint(x / sa) + za, 0, 2.0**bits - 1)
    out: FloatArray = (q - za) * sa
    return out


def percentile_mse_search(
    x: npt.ArrayLike,
    bits: int,
    candidates: Sequence[float] = ACT_PERCENTILES,
    axis: int | None = None,
) -> dict[str, Any]:
    """The percentile-MSE search in plain numbers.

    Returns ``scale``, ``zero_point`` (floats per tensor, lists per channel), ``p`` (chosen
    percentile(s)), ``index``, ``mse`` (chosen), ``mse_all`` (per candidate; per tensor
    only), ``candidates``.
    """
    a = as_float(x)
    b = check_bits(bits)
    cands = [float(p) for p in candidates]
    if not cands or any(not 0.5 <= p <= 1.0 for p in cands):
        raise SpecError(f"percentile candidates must lie in [0.5, 1], got {cands}")
    rows = a.reshape(1, -1) if axis is None else channels_first(a, axis)
    srt = np.sort(rows, axis=1)
    table = np.empty((len(cands), rows.shape[0]))
    params = []
    for i, p in enumerate(cands):
        hi = _quantile_sorted(srt, p)
        lo = _quantile_sorted(srt, 1.0 - p)
        s, z = asym_params(lo, hi, b)
        e = asym_fake_quant(rows, s[:, None], z[:, None], b) - rows
        table[i] = np.mean(e * e, axis=1)
        params.append((s, z))
    idx = [first_argmin(table[:, c]) for c in range(rows.shape[0])]
    s = np.array([params[idx[c]][0][c] for c in range(rows.shape[0])])
    z = np.array([params[idx[c]][1][c] for c in range(rows.shape[0])])
    rec: dict[str, Any] = {"candidates": cands, "bits": b}
    if axis is None:
        rec.update(scale=float(s[0]), zero_point=int(z[0]), p=cands[idx[0]], index=idx[0],
                   mse=float(table[idx[0], 0]), mse_all=[float(v) for v in table[:, 0]])
    else:
        rec.update(scale=[float(v) for v in s], zero_point=[int(v) for v in z],
                   p=[cands[i] for i in idx], index=idx,
                   mse=[float(table[idx[c], c]) for c in range(len(idx))], axis=axis)
    return rec




def percentile_mse_init(
    x: npt.ArrayLike,
    bits: int,
    *,
    kind: str = "activation",
    candidates: Sequence[float] | None = None,
    axis: int | None = None,
) -> tuple[UniformQuantizer, dict[str, Any]]:
    """I&S-ViT percentile-MSE init: the unsigned asymmetric UniformQuantizer (half-even,
    zero point NOT clamped, as the code) of the best percentile, and the record of
    :func:`percentile_mse_search`. ``kind`` "activation" | "weight" picks the default
    candidate list (ACT_PERCENTILES / WEIGHT_PERCENTILES); ``axis`` makes it per channel.
    """
    if candidates is None:
        if kind not in ("activation", "weight"):
            raise SpecError(f"kind must be 'activation' or 'weight', got {kind!r}")
        candidates = ACT_PERCENTILES if kind == "activation" else WEIGHT_PERCENTILES
    rec = percentile_mse_search(x, bits, candidates, axis)
    rec["kind"] = kind
    q = UniformQuantizer(rec["scale"], bits, rec["zero_point"], signed=False, axis=axis,
                         rounding="half_even")
    return q, rec


__all__ = ["ACT_PERCENTILES", "SULQ_ETAS", "WEIGHT_PERCENTILES", "asym_fake_quant",
           "asym_params", "percentile_mse_init", "percentile_mse_search", "sulq_eta_search"]


def sulq_eta_search(
    x: npt.ArrayLike,
    bits: int,
    *,
    etas: Sequence[float] = SULQ_ETAS,
    mode: str = "paper",
    score_mode: str = "paper",
    metric: str | Metric = "mse",
) -> tuple[ShiftUniformLog2Quantizer, dict[str, Any]]:
    """I&S-ViT SULQ η search, as the official code calibrates it.

    For each η (in order) fit ``ShiftUniformLog2Quantizer.from_data(x, bits, η,
    score_mode)`` (y range = min/max of log2(x + η)), keep the lowest loss (MSE by
    default), first on ties, then return the quantizer of that η and y range in ``mode``
    ("paper" | "code", see refq.quant.sulq).

    ``score_mode`` is the form the candidates are scored with. The official code
    (``LogSqrt2Quantizer.init_quantization_scale``) scores every η with its init formula —
    Δ = (y_max - y_min)/(2^b - 1), clamp to 2^b - 1, i.e. the "paper" form — and then runs
    its forward pass in the "code" form (Δ = (y_max - y_min)/2^b, 2^b + 1 codes) with the
    chosen η, y_min, y_max; so the default ``score_mode="paper"`` with ``mode="code"`` is
    the official calibration of the code-mode quantizer. ``score_mode="code"`` picks η by
    the code form's own loss instead (refq's option, not the official flow).

    Record: ``eta``, ``y_min``, ``y_max``, ``index``, ``loss`` and ``losses`` (of the
    scoring form), ``etas``, ``mode``, ``score_mode``, ``mse`` (MSE of the RETURNED
    quantizer on ``x``)."""
    xa = as_float(x)
    b = check_bits(bits)
    for name, v in (("mode", mode), ("score_mode", score_mode)):
        if v not in ("paper", "code"):
            raise SpecError(f"sulq_eta_search: {name} must be 'paper' or 'code', got {v!r}")

    def make(e: float) -> ShiftUniformLog2Quantizer:
        return ShiftUniformLog2Quantizer.from_data(xa, b, e, score_mode)  # type: ignore[arg-type]

    res = grid_search(xa, make, [float(e) for e in etas], metric=metric)
    s = res.best
    q = s if mode == score_mode else ShiftUniformLog2Quantizer(
        b, s.eta, s.y_min, s.y_max, mode)  # type: ignore[arg-type]
    rec = res.record()
    del rec["param"]
    err = q.fake_quant(xa) - xa
    rec.update(eta=q.eta, y_min=q.y_min, y_max=q.y_max, mode=mode, score_mode=score_mode,
               etas=[float(e) for e in etas], mse=float(np.mean(err * err)))
    return q, rec
