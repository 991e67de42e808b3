"""TSPTQ-ViT searches (Tai, Lin, Wu, ICASSP 2023; no public code) — refq's reading.

The quantizers are refq.quant's ValueTwoScaleQuantizer (V-2SF) and
OutlierTwoScaleQuantizer (O-2SF); their formulas are documented there. The paper does not
say how the thresholds, ratios and scales are calibrated; refq's choices, all "lowest MSE
on the calibration tensor, first candidate on ties":

O-2SF (LayerNorm inputs, channels on ``axis``): grid over the outlier criterion
  τ ∈ TAUS (a channel is an outlier if its range exceeds τ × the median channel range;
  the seed's example is 40×) and the scale ratio exponent k ∈ {auto} ∪ 1..max_k, where
  "auto" is the smallest k that makes every outlier channel fit (quant's
  ``from_calibration``); the normal-channel scale and the shared zero point come from the
  non-outlier channels' min/max. Candidates are ordered τ-major, auto first.

V-2SF (post-softmax / post-GELU values): the region threshold is implied by the small
  scale s (T = (M + ½)·s, M = 2^(b-1) - 1) and the ratio is 2^k. refq searches
  k ∈ 1..max_k and the top level of the large region, top = M·s·2^k, over
  max(x)·CLIP_FRACTIONS (1, 2^-1/2, 2^-1, ..., 2^-9/2: ten values); so
  s = top/(M·2^k). Candidates are ordered k-major, largest top first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float, check_bits
from refq.calib.grid import grid_search
from refq.calib.metrics import Metric
from refq.errors import SpecError
from refq.quant.two_scale import OutlierTwoScaleQuantizer, ValueTwoScaleQuantizer

TAUS: tuple[float, ...] = (2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
CLIP_FRACTIONS: tuple[float, ...] = tuple(2.0 ** (-i / 2) for i in range(10))


def o2sf_search(
    x: npt.ArrayLike,
    bits: int,
    *,
    axis: int = -1,
    taus: Sequence[float] = TAUS,
    max_k: int = 8,
    metric: str | Metric = "mse",
) -> tuple[OutlierTwoScaleQuantizer, dict[str, Any]]:
    """O-2SF fit (module docstring). Record: ``tau``, ``k``, ``k_auto`` (whether k was
    the auto fit), ``n_outliers``, ``outliers`` (channel indices), ``base_scale``,
    ``zero_point``, ``index``, ``loss``, ``losses``."""
    xa = as_float(x)
    b = check_bits(bits)
    if max_k < 1:
        raise SpecError(f"max_k must be >= 1, got {max_k}")
    grid: list[tuple[float, int | None]] = [
        (float(t), k) for t in taus for k in [None, *range(1, max_k + 1)]
    ]

    def make(p: tuple[float, int | None]) -> OutlierTwoScaleQuantizer:
        return OutlierTwoScaleQuantizer.from_calibration(xa, b, axis=axis, tau=p[0], k=p[1])

    res = grid_search(xa, make, grid, metric=metric, dedupe=True)
    q = res.best
    rec = res.record()
    del rec["param"]
    tau, k = res.param
    rec.update(tau=tau, k=q.k, k_auto=k is None, n_outliers=int(q.flags.sum()),
               outliers=[int(i) for i in np.flatnonzero(q.flags)], base_scale=q.base_scale,
               zero_point=int(q.zero_point[0]), grid=[[t, kk] for t, kk in grid])
    return q, rec


def v2sf_formula_fake_quant(x: FloatArray, xmax: float, bits: int, k: int) -> FloatArray:
    """``ValueTwoScaleQuantizer.from_max(xmax, bits, k).fake_quant(x)`` from the V-2SF
    defining formula (refq.quant.two_scale), without building the quantizer's threshold
    tables: the tables reproduce the formula on every float64 input, and the levels are the
    same float64 expressions, so the result is identical (checked in
    tests/methods/test_search_speed.py). Used to score search candidates quickly."""
    flag = 1 << (bits - 1)
    big_m = flag - 1
    ratio = 2.0**k
    s = xmax / (big_m * ratio)
    large_min = max(1, flag >> k)
    # np.rint rounds half to even like round_real(·, "half_even"); they differ only in the
    # sign of a zero result, which the int64 codes below do not keep
    xs = np.rint(x / s)
    small = np.maximum(xs, 0.0)
    big = np.clip(np.rint(x / (s * ratio)), float(large_min), float(big_m)) + flag
    codes = np.where(xs <= big_m, small, big).astype(np.int64)
    c = codes.astype(np.float64)
    out: FloatArray = np.where(codes < flag, c * s, (c - flag) * (s * ratio))
    return out


def v2sf_search(
    x: npt.ArrayLike,
    bits: int,
    *,
    max_k: int = 8,
    clip_fractions: Sequence[float] = CLIP_FRACTIONS,
    metric: str | Metric = "mse",
) -> tuple[ValueTwoScaleQuantizer, dict[str, Any]]:
    """V-2SF fit (module docstring). Record: ``k``, ``ratio``, ``scale`` (s),
    ``threshold`` ((M + ½)·s), ``top``, ``index``, ``loss``, ``losses``."""
    xa = as_float(x)
    b = check_bits(bits)
    xmax = float(xa.max())
    if xmax <= 0:
        raise SpecError("v2sf_search: max(x) <= 0")
    if not 1 <= max_k <= 16:
        raise SpecError(f"max_k must lie in 1..16, got {max_k}")
    grid = [(k, xmax * float(f)) for k in range(1, max_k + 1) for f in clip_fractions]

    def make(p: tuple[int, float]) -> ValueTwoScaleQuantizer:
        return ValueTwoScaleQuantizer.from_max(p[1], b, p[0])

    def candidate_fq(p: tuple[int, float], v: FloatArray) -> FloatArray:
        return v2sf_formula_fake_quant(v, p[1], b, p[0])

    res = grid_search(xa, make, grid, metric=metric, candidate_fq=candidate_fq)
    q = res.best
    rec = res.record()
    del rec["param"]
    rec.update(k=q.k, ratio=q.ratio, scale=q.scale, threshold=(q.M + 0.5) * q.scale,
               top=res.param[1])
    return q, rec


__all__ = ["CLIP_FRACTIONS", "TAUS", "o2sf_search", "v2sf_formula_fake_quant", "v2sf_search"]
