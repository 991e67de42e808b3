"""Shared helpers of refq.calib: array coercion and argument checks (float64 only)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.quant.base import check_bits as check_bits  # the one code-width check (2..16)

FloatArray = npt.NDArray[np.float64]


def as_float(x: npt.ArrayLike, name: str = "x", *, allow_empty: bool = False) -> FloatArray:
    """``x`` as a float64 array; SpecError naming ``name`` if it is not numeric, is empty
    (unless ``allow_empty``) or holds NaN/inf."""
    try:
        arr = np.asarray(x)
    except Exception as e:  # pragma: no cover - numpy raises odd types for odd input
        raise SpecError(f"{name}: not an array ({e})") from None
    if arr.dtype.kind not in "fiub":
        raise SpecError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    out = arr.astype(np.float64, copy=False)
    if out.size == 0 and not allow_empty:
        raise SpecError(f"{name}: empty array")
    if not np.all(np.isfinite(out)):
        raise SpecError(f"{name}: contains NaN or inf")
    return out


def norm_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """A non-negative axis index; SpecError if out of range."""
    if not -ndim <= axis < ndim:
        raise SpecError(f"{name}={axis} is out of range for a {ndim}-D array")
    return axis % ndim


def channels_first(x: FloatArray, axis: int) -> FloatArray:
    """``x`` reshaped to (C, rest) with the channel axis ``axis`` first."""
    ax = norm_axis(axis, x.ndim)
    return np.moveaxis(x, ax, 0).reshape(x.shape[ax], -1)


def first_argmin(scores: npt.ArrayLike) -> int:
    """Index of the smallest score, the FIRST one on ties (NaN never wins)."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isnan(s), np.inf, s)
    return int(np.argmin(s))
