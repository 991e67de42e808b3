"""Range observers: min-max (per tensor / per channel), exponential moving average, and
percentiles with linear interpolation (torch.quantile's arithmetic by default).

All inputs are converted to float64; results are float64 (0-d arrays per tensor, (C,)
arrays per channel). No rounding happens here.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float, channels_first
from refq.calib.quantile import Arith, check_arith, official_quantile_rows
from refq.errors import SpecError


def minmax(x: npt.ArrayLike, axis: int | None = None) -> tuple[FloatArray, FloatArray]:
    """Smallest and largest value of ``x``.

    ``axis=None``: over the whole tensor (two 0-d float64 arrays). ``axis=k``: per channel
    along axis ``k`` (every other axis is reduced), two arrays of shape (x.shape[k],).
    """
    a = as_float(x)
    if axis is None:
        return np.asarray(a.min()), np.asarray(a.max())
    c = channels_first(a, axis)
    return c.min(axis=1), c.max(axis=1)


def absmax(x: npt.ArrayLike, axis: int | None = None) -> FloatArray:
    """max |x| over the tensor (0-d) or per channel along ``axis`` ((C,))."""
    lo, hi = minmax(x, axis)
    return np.maximum(np.abs(lo), np.abs(hi))


def _quantile_sorted(s: FloatArray, p: float) -> FloatArray:
    """NumPy's linear-interpolation quantile of rows already sorted along the last axis.

    h = (n-1)·p, i = floor(h), value = s[i] + (h - i)·(s[i+1] - s[i]) (Hyndman & Fan type
    7), evaluated as numpy does: lo + d·t for t < 0.5, hi - d·(1-t) otherwise, d = hi - lo
    (two roundings each; torch.quantile rounds once, :mod:`refq.calib.quantile`).
    """
    n = s.shape[-1]
    h = (n - 1) * p
    i = min(math.floor(h), n - 1)
    j = min(i + 1, n - 1)
    frac = h - i
    lo, hi = s[..., i], s[..., j]
    d = hi - lo
    out: FloatArray = lo + d * frac if frac < 0.5 else hi - d * (1.0 - frac)
    return out


PercentileMethod = Literal["torch", "numpy"]


def percentile(x: npt.ArrayLike, p: float, axis: int | None = None, *,
               method: PercentileMethod = "torch", arith: Arith = "float64") -> FloatArray:
    """The ``p``-quantile of ``x`` with linear interpolation, ``p`` a FRACTION in [0, 1]
    (0.999, not 99.9; SpecError otherwise).

    Definition: sort the n values, h = (n-1)·p, result = s[⌊h⌋] + (h-⌊h⌋)·(s[⌊h⌋+1] -
    s[⌊h⌋]). ``method="torch"`` (default): evaluated as the official codes' ``torch.quantile``
    on CPU does it — one rounding of the interpolation, in ``arith`` (float32: x and p
    rounded to float32 first), and their ``np.percentile`` fallback above 2^24 elements
    per quantile (:func:`refq.calib.quantile.official_quantile`). ``method="numpy"``:
    ``np.quantile(x, p)`` (two roundings; float64 only). ``axis=None``: whole tensor (0-d);
    ``axis=k``: one quantile per channel of axis ``k`` ((C,)).
    """
    if not isinstance(p, (int, float, np.floating)) or not 0.0 <= float(p) <= 1.0:
        raise SpecError(f"percentile: p must be a fraction in [0, 1], got {p!r}")
    if method not in ("torch", "numpy"):
        raise SpecError(f"percentile: method must be 'torch' or 'numpy', got {method!r}")
    a = as_float(x)
    rows = a.reshape(1, -1) if axis is None else channels_first(a, axis)
    if method == "numpy":
        if arith != "float64":
            raise SpecError("percentile: method='numpy' is float64 only")
        q = _quantile_sorted(np.sort(rows, axis=1), float(p))
    else:
        ar = check_arith(arith)
        if ar == "float32":
            rows = rows.astype(np.float32).astype(np.float64)
        q = official_quantile_rows(rows, float(p), ar)
    return np.asarray(q[0]) if axis is None else q


class EMAObserver:
    """Exponential-moving-average min/max observer.

    The first batch sets (min, max); each later batch updates
    ``min ← momentum·min + (1-momentum)·batch_min`` (same for max), per tensor or per
    channel along ``axis``. ``momentum`` in [0, 1): 0 keeps only the last batch.
    """

    def __init__(self, momentum: float = 0.9, axis: int | None = None) -> None:
        if not 0.0 <= float(momentum) < 1.0:
            raise SpecError(f"EMAObserver: momentum must lie in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.axis = axis
        self._min: FloatArray | None = None
        self._max: FloatArray | None = None
        self.count = 0

    def update(self, x: npt.ArrayLike) -> EMAObserver:
        """Observe one batch; returns self."""
        lo, hi = minmax(x, self.axis)
        if self._min is None or self._max is None:
            self._min, self._max = lo, hi
        else:
            if lo.shape != self._min.shape:
                raise SpecError(f"EMAObserver: batch has {lo.shape} channels, expected "
                                f"{self._min.shape}")
            m = self.momentum
            self._min = m * self._min + (1.0 - m) * lo
            self._max = m * self._max + (1.0 - m) * hi
        self.count += 1
        return self

    @property
    def min(self) -> FloatArray:
        """Current smoothed minimum (SpecError before the first update)."""
        if self._min is None:
            raise SpecError("EMAObserver: no batch observed yet")
        return self._min

    @property
    def max(self) -> FloatArray:
        """Current smoothed maximum (SpecError before the first update)."""
        if self._max is None:
            raise SpecError("EMAObserver: no batch observed yet")
        return self._max

    def range(self) -> tuple[FloatArray, FloatArray]:
        """(min, max)."""
        return self.min, self.max


__all__ = ["EMAObserver", "PercentileMethod", "absmax", "minmax", "percentile"]
