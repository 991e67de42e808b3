"""Integer data-movement and table ops of a Program: pure functions of int64 arrays and
integer parameters (no arithmetic beyond indexing, comparisons and shifts).

Each takes its inputs positionally and its params as keywords and returns a tuple of
outputs. ``-1`` in a shape stands for the batch dimension.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refq.errors import RangeError, SpecError
from refq.intmath import IntArray


def reshape(x: IntArray, *, shape: list[int]) -> tuple[IntArray]:
    """Row-major reshape; a leading -1 keeps the batch size."""
    return (x.reshape([x.shape[0] if (i == 0 and d == -1) else d for i, d in enumerate(shape)]),)


def transpose(x: IntArray, *, perm: list[int]) -> tuple[IntArray]:
    return (np.ascontiguousarray(np.transpose(x, perm)),)


def split(x: IntArray, *, axis: int, sections: int) -> tuple[IntArray, ...]:
    """Split into ``sections`` equal parts along ``axis`` (qkv → q, k, v)."""
    if x.shape[axis] % sections:
        raise SpecError(f"split: axis {axis} of size {x.shape[axis]} not divisible by {sections}")
    return tuple(np.ascontiguousarray(p) for p in np.split(x, sections, axis=axis))


def prepend(x: IntArray, token: IntArray) -> tuple[IntArray]:
    """(B, N, D) and (1, k, D) → (B, k + N, D): class/distillation tokens in front."""
    tok = np.broadcast_to(token, (x.shape[0], *token.shape[1:]))
    return (np.concatenate([tok, x], axis=1),)


def patchify(x: IntArray, *, patch: int) -> tuple[IntArray]:
    """(B, C, H, W) → (B, (H/p)·(W/p), C·p·p), patches row-major, each flattened (C, p, p)
    like a conv weight (out, C, p, p) — so patch embedding is a linear layer."""
    b, c, h, w = x.shape
    if h % patch or w % patch:
        raise SpecError(f"patchify: image {h}x{w} not divisible by patch {patch}")
    y = x.reshape(b, c, h // patch, patch, w // patch, patch).transpose(0, 2, 4, 1, 3, 5)
    return (np.ascontiguousarray(y.reshape(b, (h // patch) * (w // patch), c * patch * patch)),)


def select(x: IntArray, *, axis: int, index: int) -> tuple[IntArray]:
    """x.take(index, axis) (e.g. the class token)."""
    return (np.ascontiguousarray(np.take(x, index, axis=axis)),)


def mean_pool(x: IntArray, *, axis: int, shift: int) -> tuple[IntArray]:
    """Sum over ``axis`` then an arithmetic right shift (floor) by ``shift`` (a power-of-two
    token count); the caller declares the output format."""
    return (np.sum(x, axis=axis) >> np.int64(shift),)


def threshold(x: IntArray, thresholds: IntArray) -> tuple[IntArray]:
    """codes = number of thresholds t with t <= x (thresholds sorted ascending): a quantizer
    realised by explicit integer decision thresholds."""
    t = thresholds.ravel()
    if t.size > 1 and bool(np.any(np.diff(t) < 0)):
        raise SpecError("threshold: thresholds must be sorted ascending")
    return (np.searchsorted(t, x, side="right").astype(np.int64),)


def lookup(x: IntArray, table: IntArray, *, offset: int) -> tuple[IntArray]:
    """y = table[x - offset]; every index must lie in the table (else RangeError)."""
    idx = x - np.int64(offset)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= table.shape[-1]):
        raise RangeError(f"lookup: index outside a table of {table.shape[-1]} entries")
    return (table.ravel()[idx] if table.ndim == 1 else np.take_along_axis(table, idx, -1),)


def shift_left(x: IntArray, *, shift: int) -> tuple[IntArray]:
    """x · 2^shift (exact; the caller declares a wide enough format)."""
    return (x << np.int64(shift),)


def add_exact(a: IntArray, b: IntArray) -> tuple[IntArray]:
    """a + b exactly (two matmul branches joined after aligning their scales by a shift)."""
    return (a + b,)


def affine(x: IntArray, m: IntArray, b: IntArray) -> tuple[IntArray]:
    """x · m + b exactly, m and b integer constants broadcast against x (e.g. per channel:
    LayerNorm γ and β at a fixed-point scale; a bias too wide for int32 added after a GEMM).
    The caller declares a wide enough output format (checked by run)."""
    return (x * m + b,)


MOVEMENT: dict[str, Callable[..., tuple[IntArray, ...]]] = {
    "reshape": reshape,
    "transpose": transpose,
    "split": split,
    "prepend": prepend,
    "patchify": patchify,
    "select": select,
    "mean_pool": mean_pool,
    "threshold": threshold,
    "lookup": lookup,
    "shift_left": shift_left,
    "add_exact": add_exact,
    "affine": affine,
}


def movement(key: str) -> Callable[..., tuple[IntArray, ...]]:
    if key not in MOVEMENT:
        raise SpecError(f"unknown program op {key!r}; known: {sorted(MOVEMENT)}")
    return MOVEMENT[key]


__all__ = ["MOVEMENT", "movement"]
