"""I&S-ViT initialisations (Zhong et al., arXiv 2311.10126; github.com/zysxmu/IaS-ViT):
percentile-MSE init of the asymmetric uniform quantizer, and the SULQ η search.

Uniform (asymmetric): s = (max - min)/(2^b - 1), z = round(-min/s), q = clamp(round(x/s) + z,
0, 2^b - 1), x̂ = (q - z)·s, round = half to even (torch.round). The init tries
(max, min) = (quantile(x, p), quantile(x, 1-p)) (linear interpolation) for each p of a
candidate list and keeps the lowest MSE ``mean((x - x̂)²)``; the FIRST candidate wins on
ties (the code updates only on a strictly smaller score). Per channel (``axis`` given)
every channel is searched on its own values. A zero range gets s = 1e-8 (refq's guard).

SULQ (:func:`sulq_eta_search`): η over SULQ_ETAS, y range = min/max of ln(x + η)/ln 2 (the
official code searches η only, not the range), each η scored by MSE with the code's init
formula; a code-mode quantizer is then built from the chosen η and range, as the official
forward pass uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float, channels_first, check_bits, first_argmin
from refq.calib.grid import grid_search
from refq.calib.metrics import Metric
from refq.calib.quantile import Arith, check_arith, official_quantile_rows
from refq.errors import SpecError
from refq.quant import UniformQuantizer
from refq.quant.arith import log_cr
from refq.quant.sulq import ShiftUniformLog2Quantizer

ACT_PERCENTILES: tuple[float, ...] = (0.999, 0.9999, 0.99999)
"""Activation candidates of I&S-ViT and RepQ-ViT; also RepQ-ViT's WEIGHT candidates."""
REPQ_WEIGHT_PERCENTILES: tuple[float, ...] = ACT_PERCENTILES
"""RepQ-ViT's weight candidates (its ``UniformQuantizer`` has one list for every tensor)."""
WEIGHT_PERCENTILES: tuple[float, ...] = (0.97, 0.98, 0.99, 0.995, 0.9995, 0.9997, 0.9999,
                                         0.99995, 0.99999)
"""I&S-ViT's weight candidates (``UniformQuantizer`` with ``is_act=False``)."""
SULQ_ETAS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.5,
                                1.0)
MIN_SCALE = 1e-8


def asym_params(lo: npt.ArrayLike, hi: npt.ArrayLike, bits: int,
                arith: Arith = "float64") -> tuple[FloatArray, FloatArray]:
    """(s, z) of the asymmetric uniform quantizer of range [lo, hi]: s = max((hi-lo)/(2^b-1),
    1e-8), z = round_half_even(-lo/s) (a float64 holding an integer; not clamped). In
    ``arith="float32"`` every step rounds to float32 (the official float32 forward)."""
    dt: Any = np.float64 if check_arith(arith) == "float64" else np.float32
    lo_a, hi_a = np.asarray(lo, dt), np.asarray(hi, dt)
    s = np.maximum((hi_a - lo_a) / dt(2.0**bits - 1), dt(MIN_SCALE))
    z = np.rint(-lo_a / s)
    return np.asarray(s, np.float64), np.asarray(z, np.float64)


def asym_fake_quant(x: FloatArray, s: npt.ArrayLike, z: npt.ArrayLike, bits: int,
                    arith: Arith = "float64") -> FloatArray:
    """(clamp(round_half_even(x/s) + z, 0, 2^b-1) - z)·s, s and z broadcasting against x
    (RepQ-ViT / I&S-ViT ``UniformQuantizer.quantize``), in ``arith``; float64 result."""
    dt: Any = np.float64 if check_arith(arith) == "float64" else np.float32
    xa = np.asarray(x, dt)
    sa, za = np.asarray(s, dt), np.asarray(z, dt)
    q = np.clip(np.rint(xa / sa) + za, dt(0), dt(2.0**bits - 1))
    out: FloatArray = np.asarray((q - za) * sa, dtype=np.float64)
    return out


def _mse_rows(x: FloatArray, xq: FloatArray, arith: Arith) -> FloatArray:
    """mean over each row of |x - x̂|² (the official ``lp_loss(..., p=2, reduction='all')``,
    row by row), in ``arith``."""
    dt: Any = np.float64 if arith == "float64" else np.float32
    e = np.asarray(x, dt) - np.asarray(xq, dt)
    return np.asarray(np.mean(e * e, axis=-1, dtype=dt), dtype=np.float64)


def percentile_mse_search(
    x: npt.ArrayLike,
    bits: int,
    candidates: Sequence[float] = ACT_PERCENTILES,
    axis: int | None = None,
    *,
    arith: Arith = "float64",
) -> dict[str, Any]:
    """The percentile-MSE search in plain numbers (module docstring), on the whole tensor
    (``axis=None``) or on each channel of ``axis`` separately.

    For each candidate p, in order: hi = quantile(p), lo = quantile(1 - p) (torch.quantile's
    arithmetic, :mod:`refq.calib.quantile`, with its np.percentile fallback above 2^24
    values per row), (s, z) = :func:`asym_params`, score = mean |x - x̂|²; the first
    strictly smallest score wins (``score < best`` in the official loop). ``arith``:
    "float32" reproduces the official float32 run (values, quantiles, scales and scores in
    float32); the default float64 is the official code run on float64 tensors.

    Returns ``scale``, ``zero_point`` (floats per tensor, lists per channel), ``p`` (chosen
    percentile(s)), ``index``, ``mse`` (chosen), ``mse_all`` (per candidate; per tensor
    only), ``candidates``, ``arith``.
    """
    a = as_float(x)
    b = check_bits(bits)
    ar = check_arith(arith)
    cands = [float(p) for p in candidates]
    if not cands or any(not 0.5 <= p <= 1.0 for p in cands):
        raise SpecError(f"percentile candidates must lie in [0.5, 1], got {cands}")
    rows = a.reshape(1, -1) if axis is None else channels_first(a, axis)
    if ar == "float32":
        rows = rows.astype(np.float32).astype(np.float64)
    srt = np.sort(rows, axis=1)
    table = np.empty((len(cands), rows.shape[0]))
    params = []
    for i, p in enumerate(cands):
        hi = official_quantile_rows(rows, p, ar, srt)
        lo = official_quantile_rows(rows, 1.0 - p, ar, srt)
        s, z = asym_params(lo, hi, b, ar)
        table[i] = _mse_rows(rows, asym_fake_quant(rows, s[:, None], z[:, None], b, ar), ar)
        params.append((s, z))
    idx = [first_argmin(table[:, c]) for c in range(rows.shape[0])]
    s = np.array([params[idx[c]][0][c] for c in range(rows.shape[0])])
    z = np.array([params[idx[c]][1][c] for c in range(rows.shape[0])])
    rec: dict[str, Any] = {"candidates": cands, "bits": b, "arith": ar}
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
    arith: Arith = "float64",
) -> tuple[UniformQuantizer, dict[str, Any]]:
    """RepQ-ViT / I&S-ViT percentile-MSE init: the unsigned asymmetric UniformQuantizer
    (half-even, zero point NOT clamped, as the code) of the best percentile, and the record
    of :func:`percentile_mse_search`. ``kind`` "activation" | "weight" picks the default
    candidate list (ACT_PERCENTILES / I&S-ViT's WEIGHT_PERCENTILES; RepQ-ViT's weights pass
    ``candidates=REPQ_WEIGHT_PERCENTILES``); ``axis`` makes it per channel.
    """
    if candidates is None:
        if kind not in ("activation", "weight"):
            raise SpecError(f"kind must be 'activation' or 'weight', got {kind!r}")
        candidates = ACT_PERCENTILES if kind == "activation" else WEIGHT_PERCENTILES
    rec = percentile_mse_search(x, bits, candidates, axis, arith=arith)
    rec["kind"] = kind
    q = UniformQuantizer(rec["scale"], bits, rec["zero_point"], signed=False, axis=axis,
                         rounding="half_even")
    return q, rec


__all__ = ["ACT_PERCENTILES", "REPQ_WEIGHT_PERCENTILES", "SULQ_ETAS", "WEIGHT_PERCENTILES",
           "asym_fake_quant",
           "asym_params", "percentile_mse_init", "percentile_mse_search", "sulq_eta_search"]


SulqArith = Literal["refq", "float64", "float32"]


def _sulq_official_init(x: FloatArray, bits: int, etas: Sequence[float], arith: str
                        ) -> tuple[int, list[float], list[tuple[float, float]]]:
    """I&S-ViT ``LogSqrt2Quantizer.init_quantization_scale`` (quant/quantizer.py of
    zysxmu/IaS-ViT 9300cea): for each η, y = ln(x + η)/ln(2) (its ``logk``; ln correctly
    rounded, as torch's CPU log is wherever we measured it), range = min/max
    of y, the INIT form x̂ = 2^round(clamp(round((y - y_min)/Δ), 0, 2^b-1)·Δ + y_min) - η with
    Δ = (y_max - y_min)/(2^b - 1), score = mean |x - x̂|², first strictly smallest wins.
    Returns (index, scores, ranges)."""
    dt: Any = np.float64 if arith == "float64" else np.float32
    is32 = dt is np.float32
    xa = np.asarray(x, dtype=dt)
    ln2 = dt(log_cr(np.array(2.0), "ln", is32))
    n = dt(2**bits - 1)
    best, idx = np.inf, 0
    scores: list[float] = []
    ranges: list[tuple[float, float]] = []
    for k, eta in enumerate(etas):
        with np.errstate(divide="ignore", invalid="ignore"):
            # ln correctly rounded (torch's CPU log is, here; NumPy's SIMD log is not: it
            # is one ulp off at ln(0.992427062106646))
            y = dt(log_cr(xa + dt(eta), "ln", is32)) / ln2
        hi, lo = y.max(), y.min()
        d = (hi - lo) / n
        q = np.clip(np.rint((y - lo) / d), dt(0), n)
        xq = np.exp2(np.rint(q * d + lo)) - dt(eta)
        e = xa - xq
        v = float(np.mean(e * e, dtype=dt))
        scores.append(v)
        ranges.append((float(lo), float(hi)))
        if v < best:  # strictly smaller: the first candidate wins a tie
            best, idx = v, k
    return idx, scores, ranges


def sulq_eta_search(
    x: npt.ArrayLike,
    bits: int,
    *,
    etas: Sequence[float] = SULQ_ETAS,
    mode: str = "paper",
    score_mode: str = "paper",
    metric: str | Metric = "mse",
    arith: SulqArith = "refq",
) -> tuple[ShiftUniformLog2Quantizer, dict[str, Any]]:
    """I&S-ViT SULQ η search, as the official code calibrates it.

    For each η (in order) fit ``ShiftUniformLog2Quantizer.from_data(x, bits, η,
    score_mode)`` (y range = min/max of ln(x + η)/ln 2), keep the lowest loss (MSE by
    default), first on ties, then return the quantizer of that η and y range in ``mode``
    ("paper" | "code", see refq.quant.sulq).

    ``score_mode`` is the form the candidates are scored with. The official code
    (``LogSqrt2Quantizer.init_quantization_scale``) scores every η with its init formula —
    Δ = (y_max - y_min)/(2^b - 1), clamp to 2^b - 1, i.e. the "paper" form — and then runs
    its forward pass in the "code" form (Δ = (y_max - y_min)/2^b, 2^b + 1 codes) with the
    chosen η, y_min, y_max; so the default ``score_mode="paper"`` with ``mode="code"`` is
    the official calibration of the code-mode quantizer. ``score_mode="code"`` picks η by
    the code form's own loss instead (refq's option, not the official flow).

    ``arith``: "refq" (default) scores with :meth:`ShiftUniformLog2Quantizer.from_data`
    (y = ln(x + η)/ln 2 with a correctly rounded ln, float64) and keeps η in float64 (the
    formula); "float64" / "float32" reproduce the official code's arithmetic run in that
    dtype — y = ln(x + η)/ln(2) in the init (its ``logk``), scores in that dtype, and the
    returned quantizer holds η rounded to float32 (the official ``torch.tensor(cur_bias)``
    is a float32 tensor, added to x in the forward) with the y range of the init
    (computed with the unrounded η). Only ``score_mode="paper"`` and the MSE metric exist
    in the official flow.

    Record: ``eta``, ``y_min``, ``y_max``, ``index``, ``loss`` and ``losses`` (of the
    scoring form), ``etas``, ``mode``, ``score_mode``, ``arith``, ``mse`` (MSE of the
    RETURNED quantizer on ``x``)."""
    xa = as_float(x)
    b = check_bits(bits)
    for name, v in (("mode", mode), ("score_mode", score_mode)):
        if v not in ("paper", "code"):
            raise SpecError(f"sulq_eta_search: {name} must be 'paper' or 'code', got {v!r}")
    if arith not in ("refq", "float64", "float32"):
        raise SpecError(f"sulq_eta_search: arith must be 'refq', 'float64' or 'float32', "
                        f"got {arith!r}")
    eta_list = [float(e) for e in etas]
    rec: dict[str, Any]
    if arith != "refq":
        if score_mode != "paper" or metric != "mse":
            raise SpecError("sulq_eta_search: the official arithmetic scores with the init "
                            "form and the MSE (score_mode='paper', metric='mse')")
        i, scores, ranges = _sulq_official_init(xa, b, eta_list, arith)
        lo, hi = ranges[i]
        q = ShiftUniformLog2Quantizer(b, float(np.float32(eta_list[i])), lo, hi,
                                      mode)  # type: ignore[arg-type]
        rec = {"index": i, "loss": scores[i], "losses": scores}
    else:
        def make(e: float) -> ShiftUniformLog2Quantizer:
            return ShiftUniformLog2Quantizer.from_data(xa, b, e, score_mode)  # type: ignore[arg-type]

        res = grid_search(xa, make, eta_list, metric=metric)
        s = res.best
        q = s if mode == score_mode else ShiftUniformLog2Quantizer(
            b, s.eta, s.y_min, s.y_max, mode)  # type: ignore[arg-type]
        rec = res.record()
        del rec["param"]
    err = q.fake_quant(xa) - xa
    rec.update(eta=q.eta, y_min=q.y_min, y_max=q.y_max, mode=mode, score_mode=score_mode,
               etas=eta_list, arith=arith, mse=float(np.mean(err * err)))
    return q, rec
