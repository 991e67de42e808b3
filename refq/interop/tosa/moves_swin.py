"""Swin's movement ops (refq.program.movement) as TOSA data movement — no arithmetic.

Tokens (B, side², C) are row-major over a side × side grid; each op views them as the grid
(B, side, side, C) with RESHAPE and moves whole elements:

``roll`` (out[i, j] = x[(i - s) mod side, (j - s) mod side]): along each grid axis, with
k = s mod side, out = CONCAT(x[side - k:], x[:side - k]) — two SLICEs and one CONCAT per
axis (none where k = 0).

``window_partition``: RESHAPE (B, K, w, K, w, C) with K = side/w, TRANSPOSE (0, 1, 3, 2,
4, 5), RESHAPE (B·K², w², C). ``window_reverse``: its inverse, RESHAPE (B, K, K, w, w, C),
the same TRANSPOSE, RESHAPE (B, side², C).

``patch_merge``: output token (i, j) is the concatenation of grid tokens (2i + r, 2j + c) in
the order (r, c) = (0,0), (1,0), (0,1), (1,1) — part index 2c + r. RESHAPE (B, h, 2, h, 2, C)
(axes i, r, j, c), TRANSPOSE (0, 1, 3, 4, 2, 5) to (i, j, c, r), RESHAPE (B, h², 4C).

``window_mask``: x (B·W, H, n, n) as (B, W, H, n, n), the 0/1 mask (W, n, n) as a bool
tensor (1, W, 1, n, n) — a constant when the mask is a program constant, else mask != 0 —
and SELECT(mask, value, x), RESHAPE back.

A value held as two int32 words (a 64-bit refq tensor) moves word by word.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refq.interop.tosa.graph import ExportError, Graph, Val
from refq.interop.tosa.values import Const, Operand, Value, tensor
from refq.interop.tosa.wide import Wide


def _words(t: Value, fn: Callable[[Val], Val]) -> Value:
    """``fn`` (a pure data movement) on a Val, or on both words of a Wide."""
    if isinstance(t, Val):
        return fn(t)
    return Wide(fn(t.hi), fn(t.lo), t.vlo, t.vhi)


def _grid(t: Value, side: int, op: str) -> tuple[int, int]:
    """(B, C) of tokens (B, side², C); ExportError otherwise."""
    if len(t.shape) != 3 or side < 1 or t.shape[1] != side * side:
        raise ExportError(f"{op}: expected (B, {side}x{side}, C) tokens, got {t.shape}")
    return t.shape[0], t.shape[2]


def _roll_axis(g: Graph, x: Val, axis: int, k: int) -> Val:
    """x rolled by k (0 < k < n) along ``axis``: CONCAT(x[n - k:], x[:n - k])."""
    n = x.shape[axis]
    start_hi = [0] * x.rank
    start_hi[axis] = n - k
    size_hi = list(x.shape)
    size_hi[axis] = k
    size_lo = list(x.shape)
    size_lo[axis] = n - k
    tail = g.slice(x, start_hi, size_hi)
    head = g.slice(x, [0] * x.rank, size_lo)
    return g.concat([tail, head], axis)


def roll(g: Graph, x: Operand, *, side: int, shift: int) -> tuple[Value]:
    t = tensor(g, x)
    b, c = _grid(t, side, "roll")
    k = shift % side

    def move(v: Val) -> Val:
        if k == 0:
            return v
        grid = g.reshape(v, (b, side, side, c))
        grid = _roll_axis(g, _roll_axis(g, grid, 1, k), 2, k)
        return g.reshape(grid, (b, side * side, c))

    return (_words(t, move),)


def window_partition(g: Graph, x: Operand, *, side: int, window: int) -> tuple[Value]:
    t = tensor(g, x)
    b, c = _grid(t, side, "window_partition")
    if window < 1 or side % window:
        raise ExportError(f"window_partition: side {side} not divisible by window {window}")
    k = side // window

    def move(v: Val) -> Val:
        y = g.transpose(g.reshape(v, (b, k, window, k, window, c)), (0, 1, 3, 2, 4, 5))
        return g.reshape(y, (b * k * k, window * window, c))

    return (_words(t, move),)


def window_reverse(g: Graph, x: Operand, *, side: int, window: int) -> tuple[Value]:
    t = tensor(g, x)
    if window < 1 or side % window:
        raise ExportError(f"window_reverse: side {side} not divisible by window {window}")
    k = side // window
    shape = t.shape
    if len(shape) != 3 or shape[1] != window * window or shape[0] % (k * k):
        raise ExportError(f"window_reverse: expected (B·{k * k}, {window * window}, C) "
                          f"windows, got {shape}")
    b, c = shape[0] // (k * k), shape[2]

    def move(v: Val) -> Val:
        y = g.transpose(g.reshape(v, (b, k, k, window, window, c)), (0, 1, 3, 2, 4, 5))
        return g.reshape(y, (b, side * side, c))

    return (_words(t, move),)


def patch_merge(g: Graph, x: Operand, *, side: int) -> tuple[Value]:
    t = tensor(g, x)
    b, c = _grid(t, side, "patch_merge")
    if side % 2:
        raise ExportError(f"patch_merge: side {side} is odd")
    h = side // 2

    def move(v: Val) -> Val:
        y = g.transpose(g.reshape(v, (b, h, 2, h, 2, c)), (0, 1, 3, 4, 2, 5))
        return g.reshape(y, (b, h * h, 4 * c))

    return (_words(t, move),)


def window_mask(g: Graph, x: Operand, mask: Operand, *, value: int) -> tuple[Value]:
    t = tensor(g, x)
    if not isinstance(t, Val):
        raise ExportError("window_mask: 64-bit logits are not translated")
    ms = mask.shape
    if len(ms) != 3 or len(t.shape) != 4 or t.shape[0] % ms[0] or t.shape[2:] != ms[1:]:
        raise ExportError(f"window_mask: logits {t.shape} and mask {ms} do not match")
    w = ms[0]
    view = (t.shape[0] // w, w, t.shape[1], *t.shape[2:])
    mview = (1, w, 1, ms[1], ms[2])
    if isinstance(mask, Const):
        cond = g.const(np.asarray(mask.values).reshape(mview) != 0)
    else:
        m = tensor(g, mask)
        if not isinstance(m, Val):
            raise ExportError("window_mask: a 64-bit mask")
        cond = g.lnot(g.eq(g.reshape(g.i32(m), mview), g.scalar(0, len(mview))))
    fill = g.const(np.full((1,) * len(view), value, dtype=np.int64))
    y = g.select(cond, fill, g.reshape(t, view))
    return (g.reshape(y, t.shape),)


SWIN_MOVES: dict[str, Callable[..., tuple[Value, ...]]] = {
    "roll": roll,
    "window_partition": window_partition,
    "window_reverse": window_reverse,
    "patch_merge": patch_merge,
    "window_mask": window_mask,
}

__all__ = ["SWIN_MOVES"]
