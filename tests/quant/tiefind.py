"""Finding the exact ties of a float expression (test helper, independent of refq).

A quantizer's official forward rounds one float expression e(x) (x·M, x/Δ, -2·log2(x/Δ),
...). A *tie* is an input x — a float64, or a float32 for the float32 forms — at which the
computed e(x) is exactly k + ½; a *neighbour* is the float just before the first and just
after the last tie of a target (on the float grid of x). :func:`crossings` finds them for
many targets at once by bisection over the ordered bit patterns of x, for an expression
that is monotone (non-decreasing) in x.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]
Expr = Callable[[F], F]


def _kdt(dtype: Any) -> tuple[Any, Any, int]:
    if np.dtype(dtype) == np.float32:
        return np.float32, np.int32, 31
    return np.float64, np.int64, 63


def to_key(x: npt.ArrayLike, dtype: Any = np.float64) -> npt.NDArray[np.int64]:
    """Order-preserving integer key of floats of ``dtype`` (as int64)."""
    fdt, idt, sh = _kdt(dtype)
    i = np.ascontiguousarray(np.asarray(x, dtype=fdt)).view(idt).astype(np.int64)
    mag = (1 << sh) - 1
    return np.where(i >= 0, i, -1 - (i & mag))


def from_key(k: npt.ArrayLike, dtype: Any = np.float64) -> F:
    """Inverse of :func:`to_key`, returned as float64 values."""
    fdt, idt, sh = _kdt(dtype)
    ka = np.asarray(k, dtype=np.int64)
    i = np.where(ka >= 0, ka, (-1 - ka) + np.int64(-(1 << sh))).astype(idt)
    return np.ascontiguousarray(i).view(fdt).astype(np.float64)


def crossings(expr: Expr, targets: npt.ArrayLike, lo: float, hi: float, *,
              dtype: Any = np.float64, exact: Expr | None = None, window: int = 6,
              walk: int = 48) -> tuple[F, F]:
    """(ties, neighbours) of a non-decreasing ``expr`` on [lo, hi] for every target.

    Bisection (with ``expr``) finds, per target t, the first x with expr(x) >= t; then
    ``exact`` (default ``expr``; pass the exact evaluation when ``expr`` is a fast
    approximation, e.g. a libm log) is evaluated on the keys from ``window`` before that
    point to ``walk`` after it: the ties are the x with exact(x) == t, the neighbours the
    float before the first and after the last tie (or the two floats around t's crossing
    where it has no tie).
    """
    ex = expr if exact is None else exact
    t = np.asarray(targets, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0), np.zeros(0)
    klo = np.full(t.shape, to_key(np.array([lo]), dtype)[0])
    khi = np.full(t.shape, to_key(np.array([hi]), dtype)[0])
    with np.errstate(all="ignore"):
        for _ in range(66):
            act = (khi - 1) > klo
            if not bool(act.any()):
                break
            mid = (klo >> 1) + (khi >> 1) + (klo & khi & 1)  # no int64 overflow
            ge = expr(from_key(mid, dtype)) >= t
            khi = np.where(act & ge, mid, khi)
            klo = np.where(act & ~ge, mid, klo)
        offs = np.arange(-window, walk + 1, dtype=np.int64)
        keys = khi[:, None] + offs[None, :]
        keys = np.clip(keys, to_key(np.array([lo]), dtype)[0], to_key(np.array([hi]), dtype)[0])
        xs = from_key(keys, dtype)
        v = ex(xs.ravel()).reshape(xs.shape)
    hit = v == t[:, None]
    ties = xs[hit]
    below = v < t[:, None]
    nb: list[float] = []
    for r in range(t.size):
        h = np.flatnonzero(hit[r])
        if h.size:
            a, b = int(h[0]), int(h[-1])
            if a > 0:
                nb.append(float(xs[r, a - 1]))
            if b + 1 < xs.shape[1]:
                nb.append(float(xs[r, b + 1]))
        else:
            bl = np.flatnonzero(below[r])
            if bl.size and bl[-1] + 1 < xs.shape[1]:
                nb.extend([float(xs[r, bl[-1]]), float(xs[r, bl[-1] + 1])])
    return np.unique(ties), np.unique(np.array(nb, dtype=np.float64))


def with_edges(points: F, edges: list[float], dtype: Any = np.float64) -> F:
    """``points`` plus each edge and its two float neighbours (of ``dtype``)."""
    fdt = np.float32 if np.dtype(dtype) == np.float32 else np.float64
    e = np.asarray(edges, dtype=fdt)
    extra = np.concatenate([e, np.nextafter(e, fdt(-np.inf)), np.nextafter(e, fdt(np.inf))])
    return np.unique(np.concatenate([points, extra.astype(np.float64)]))
