"""Error metrics used by the calibration searches. Every metric is a LOSS: lower is better.

A metric is any callable ``metric(ref, approx) -> float`` on two float arrays of the same
shape (``ref`` the full-precision tensor, ``approx`` its quantized counterpart). Searches
that score groups of a tensor separately (one attention head, one row block of qkv) call
``restrict(metric, index)`` first, so that metrics carrying per-element data (the weighted
metric below, the Hessian metric of ``refq.calib.hessian``) see the matching slice of their
weights; plain callables are used unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float
from refq.errors import SpecError

Metric = Callable[[FloatArray, FloatArray], float]
"""``metric(ref, approx) -> float``, lower is better."""

Index = Any
"""A NumPy basic index (tuple of slices / ints / Ellipsis)."""


@runtime_checkable
class Restrictable(Protocol):
    """A metric that can be narrowed to a sub-block of its tensors."""

    def restrict(self, index: Index) -> Metric: ...


def restrict(metric: Metric, index: Index) -> Metric:
    """``metric`` narrowed to ``ref[index]`` / ``approx[index]``: ``metric.restrict(index)``
    if it has one, else ``metric`` itself."""
    narrow = getattr(metric, "restrict", None)
    if callable(narrow):
        return cast(Metric, narrow(index))
    return metric


def _pair(ref: npt.ArrayLike, approx: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    a, b = as_float(ref, "ref"), as_float(approx, "approx")
    if a.shape != b.shape:
        raise SpecError(f"metric: shapes differ, ref {a.shape} vs approx {b.shape}")
    return a, b


def mse(ref: npt.ArrayLike, approx: npt.ArrayLike) -> float:
    """Mean squared error ``mean((ref - approx)²)`` over every element."""
    a, b = _pair(ref, approx)
    d = a - b
    return float(np.mean(d * d))


COSINE_EPS = 1e-8
"""Floor of the norm product in the cosine (torch.nn.functional.cosine_similarity's eps)."""


def cosine(ref: npt.ArrayLike, approx: npt.ArrayLike, axis: int | None = -1) -> float:
    """Cosine SIMILARITY (higher is better; not a loss): ``Σ a·b / max(‖a‖‖b‖, 1e-8)``
    along ``axis`` (the feature axis, -1 as PTQ4ViT's ``F.cosine_similarity(dim=-1)``),
    then the mean over all other positions; ``axis=None`` treats the tensors as one vector.
    """
    a, b = _pair(ref, approx)
    if axis is None:
        a, b, axis = a.reshape(-1), b.reshape(-1), -1
    num = np.sum(a * b, axis=axis)
    den = np.sqrt(np.sum(a * a, axis=axis)) * np.sqrt(np.sum(b * b, axis=axis))
    return float(np.mean(num / np.maximum(den, COSINE_EPS)))


def cosine_distance(ref: npt.ArrayLike, approx: npt.ArrayLike, axis: int | None = -1) -> float:
    """``1 - cosine(ref, approx, axis)``: the loss form of the cosine (PTQ4ViT's base
    PTQ maximizes the cosine, i.e. minimizes this)."""
    return 1.0 - cosine(ref, approx, axis)


class WeightedMSE:
    """``mean((w ⊙ (ref - approx))²)``: the squared error weighted element-wise by ``w``
    BEFORE squaring (PTQ4ViT's "brecq"/Hessian form with w = ∂L/∂O). ``w`` broadcasts
    against the tensors; ``restrict(index)`` slices ``w`` (after broadcasting to the
    tensor's shape on first use) together with the tensors.
    """

    def __init__(self, weight: npt.ArrayLike, _index: Index = None) -> None:
        self.weight = as_float(weight, "weight")
        self._index = _index

    def __call__(self, ref: FloatArray, approx: FloatArray) -> float:
        a, b = _pair(ref, approx)
        w = self.weight
        if self._index is not None:
            w = w[self._index]
        try:
            e = w * (a - b)
        except ValueError:
            raise SpecError(f"weighted_mse: weight of shape {w.shape} does not broadcast to "
                            f"{a.shape}") from None
        if e.shape != a.shape:
            e = np.broadcast_to(e, np.broadcast_shapes(e.shape, a.shape))
        return float(np.mean(e * e))

    def restrict(self, index: Index) -> WeightedMSE:
        """This metric on ``ref[index]`` (weights sliced the same way)."""
        if self._index is not None:
            raise SpecError("weighted_mse: restrict() of an already restricted metric")
        return WeightedMSE(self.weight, index)


def weighted_mse(weight: npt.ArrayLike) -> WeightedMSE:
    """The weighted-MSE metric ``mean((weight ⊙ (ref - approx))²)``; ``weight`` is, e.g.,
    the gradient of the task loss w.r.t. the layer output (the Hessian-guided metric's
    diagonal approximation). Weight shape must broadcast to the scored tensor's shape;
    for group-wise searches give it the FULL tensor shape so that slices line up."""
    return WeightedMSE(weight)


METRICS: dict[str, Metric] = {"mse": mse, "cosine": cosine_distance}
"""Named metrics accepted wherever a search takes ``metric=`` as a string."""


def get_metric(metric: str | Metric) -> Metric:
    """A metric callable from a name in :data:`METRICS` or a callable (returned as is)."""
    if isinstance(metric, str):
        if metric not in METRICS:
            raise SpecError(f"unknown metric {metric!r}; known: {sorted(METRICS)}")
        return METRICS[metric]
    if not callable(metric):
        raise SpecError(f"metric must be a name or a callable, got {metric!r}")
    return metric


__all__ = ["COSINE_EPS", "METRICS", "Metric", "WeightedMSE", "cosine", "cosine_distance",
           "get_metric", "mse", "restrict", "weighted_mse"]
