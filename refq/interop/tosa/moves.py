"""refq's data-movement and table ops (refq.program.movement) as TOSA sequences.

``reshape``/``transpose``/``split``/``select``/``prepend``/``patchify``: RESHAPE, TRANSPOSE,
SLICE, TILE and CONCAT (patchify: RESHAPE to (B, C, H/p, p, W/p, p), TRANSPOSE (0, 2, 4, 1, 3,
5), RESHAPE); Swin's ``roll``, ``window_partition``, ``window_reverse``, ``patch_merge`` and
``window_mask`` are in refq.interop.tosa.moves_swin. ``mean_pool``: REDUCE_SUM,
ARITHMETIC_RIGHT_SHIFT (floor; none for shift 0, the exact sum). ``shift_left``,
``add_exact``, ``affine``: int32 LOGICAL_LEFT_SHIFT / ADD / MUL where the result is proven
within int32, else exact 64-bit values (refq.interop.tosa.wide).

``threshold`` (codes = #{t <= x}, t sorted): thresholds at or below the input's smallest
possible value always count (a constant), those above its largest never do; the rest are
searched by a branch-free binary search — log2(n) rounds of GATHER (the candidate threshold),
GREATER_EQUAL and SELECT — on int32, or on 64-bit values (two GATHERs and a two-word compare)
where the input or the thresholds need them. ``lookup``: table[x - offset], one GATHER.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.interop.tosa import wide
from refq.interop.tosa.graph import ExportError, Graph, Val, fits
from refq.interop.tosa.moves_swin import SWIN_MOVES
from refq.interop.tosa.values import (
    Const,
    Operand,
    Value,
    as_i32,
    as_wide,
    reshape_value,
    tensor,
    transpose_value,
    value_interval,
)
from refq.interop.tosa.wide import Wide

Moves = Callable[..., tuple[Value, ...]]


def _dims(shape: Sequence[int], batch: int) -> tuple[int, ...]:
    return tuple(batch if (i == 0 and d == -1) else int(d) for i, d in enumerate(shape))


def reshape(g: Graph, x: Operand, *, shape: list[int]) -> tuple[Value]:
    t = tensor(g, x)
    return (reshape_value(g, t, _dims(shape, t.shape[0])),)


def transpose(g: Graph, x: Operand, *, perm: list[int]) -> tuple[Value]:
    return (transpose_value(g, tensor(g, x), [int(p) for p in perm]),)


def _slice(g: Graph, t: Value, start: list[int], size: list[int]) -> Value:
    if isinstance(t, Val):
        return g.slice(t, start, size)
    return Wide(g.slice(t.hi, start, size), g.slice(t.lo, start, size), t.vlo, t.vhi)


def split(g: Graph, x: Operand, *, axis: int, sections: int) -> tuple[Value, ...]:
    t = tensor(g, x)
    ax = axis % len(t.shape)
    n = t.shape[ax]
    if n % sections:
        raise ExportError(f"split: axis {axis} of size {n} not divisible by {sections}")
    step = n // sections
    outs = []
    for i in range(sections):
        start = [0] * len(t.shape)
        start[ax] = i * step
        size = list(t.shape)
        size[ax] = step
        outs.append(_slice(g, t, start, size))
    return tuple(outs)


def select(g: Graph, x: Operand, *, axis: int, index: int) -> tuple[Value]:
    t = tensor(g, x)
    ax = axis % len(t.shape)
    start = [0] * len(t.shape)
    start[ax] = index % t.shape[ax]
    size = list(t.shape)
    size[ax] = 1
    s = _slice(g, t, start, size)
    return (reshape_value(g, s, tuple(d for i, d in enumerate(t.shape) if i != ax)),)


def prepend(g: Graph, x: Operand, token: Operand) -> tuple[Value]:
    xt, tk = as_i32(g, x), as_i32(g, token)
    tk = g.tile(tk, [xt.shape[0]] + [1] * (tk.rank - 1)) if xt.shape[0] != tk.shape[0] else tk
    return (g.concat([tk, xt], 1),)


def patchify(g: Graph, x: Operand, *, patch: int) -> tuple[Value]:
    t = tensor(g, x)
    if not isinstance(t, Val):
        raise ExportError("patchify: a 64-bit image?")
    b, c, h, w = t.shape
    if h % patch or w % patch:
        raise ExportError(f"patchify: image {h}x{w} not divisible by patch {patch}")
    y = g.reshape(t, (b, c, h // patch, patch, w // patch, patch))
    y = g.transpose(y, (0, 2, 4, 1, 3, 5))
    return (g.reshape(y, (b, (h // patch) * (w // patch), c * patch * patch)),)


def mean_pool(g: Graph, x: Operand, *, axis: int, shift: int) -> tuple[Value]:
    t = as_i32(g, x)
    ax = axis % t.rank
    total = g.reduce("SUM", t, ax)
    s = g.ars(total, shift) if shift else total
    return (g.reshape(s, tuple(d for i, d in enumerate(t.shape) if i != ax)),)


def shift_left(g: Graph, x: Operand, *, shift: int) -> tuple[Value]:
    t = tensor(g, x)
    lo, hi = value_interval(t)
    if fits(lo << shift, hi << shift, "int32"):
        return (g.shl(as_i32(g, t), shift),)
    if isinstance(t, Val) and shift < 32:
        return (wide.from_shifted(g, t, shift),)
    raise ExportError(f"shift_left by {shift} of a 64-bit value is not translated")


def add_exact(g: Graph, a: Operand, b: Operand) -> tuple[Value]:
    rank = max(len(a.shape), len(b.shape))
    ta, tb = tensor(g, a, rank), tensor(g, b, rank)
    if len(ta.shape) != len(tb.shape):
        raise ExportError("add_exact: runtime operands of different ranks")
    (alo, ahi), (blo, bhi) = value_interval(ta), value_interval(tb)
    if fits(alo + blo, ahi + bhi, "int32") and isinstance(ta, Val) and isinstance(tb, Val):
        return (g.add(ta, tb),)
    return (wide.add(g, as_wide(g, ta), as_wide(g, tb)),)


def affine(g: Graph, x: Operand, m: Operand, b: Operand) -> tuple[Value]:
    """x·m + b for integer constants m, b broadcast against x."""
    tx = tensor(g, x)
    xlo, xhi = value_interval(tx)
    mc = _const_values(m, "affine multiplier")
    bc = _const_values(b, "affine offset")
    rank = len(tx.shape)
    mv = mc.reshape((1,) * (rank - mc.ndim) + mc.shape) if mc.ndim < rank else mc
    bv = bc.reshape((1,) * (rank - bc.ndim) + bc.shape) if bc.ndim < rank else bc
    mlo, mhi = int(mv.min()), int(mv.max())
    corners = [xlo * mlo, xlo * mhi, xhi * mlo, xhi * mhi]
    plo, phi = min(corners), max(corners)
    blo, bhi = int(bv.min()), int(bv.max())
    if isinstance(tx, Val) and fits(plo, phi, "int32") and fits(plo + blo, phi + bhi, "int32"):
        prod = g.mul(tx, g.const(mv))
        return (g.add(prod, g.const(bv)),)
    if not isinstance(tx, Val) or mlo < -(2**31) or mhi >= 2**31:
        if isinstance(tx, Wide) and mlo >= 0 and mv.shape[-1] in (1, *tx.shape[-1:]) and \
                mv.size == mv.shape[-1]:
            d = g.declared  # refq checks x·m + b against the output's declared format
            within = None if d is None else (
                d[0] - bhi, d[1] - blo, f"affine: x·m + b within {d[2]} (checked by refq)")
            w = wide.mul_const(g, tx, [int(v) for v in mv.ravel()], within=within)
        else:
            raise ExportError("affine: 64-bit input with a signed or non-channel multiplier")
    else:
        w = wide.mul64(g, tx, g.const(mv, "int32"))
    bname = f"{b.name}:affine" if isinstance(b, Const) else "_affine_b"
    bw = tensor(g, Const(bname, bv, _wide_fmt())) if not fits(blo, bhi, "int32") else \
        wide.from_i32(g, g.const(bv, "int32"))
    assert isinstance(bw, Wide)
    return (wide.add(g, w, bw),)


def _wide_fmt() -> Any:
    from refq.intmath import IntFormat

    return IntFormat(64, True)


def _const_values(v: Operand, what: str) -> npt.NDArray[np.int64]:
    if not isinstance(v, Const):
        raise ExportError(f"{what}: a runtime tensor (only constants are translated)")
    return np.asarray(v.values, dtype=np.int64)


def threshold(g: Graph, x: Operand, thresholds: Operand) -> tuple[Value]:
    """codes = #{t <= x} (module docstring)."""
    t = np.sort(_const_values(thresholds, "threshold list").ravel())
    tx = tensor(g, x)
    xlo, xhi = value_interval(tx)
    base = int(np.searchsorted(t, xlo, side="right"))  # t <= xlo: always counted
    active = [int(v) for v in t if xlo < v <= xhi]
    n = len(active)
    shape = tx.shape
    if n == 0:
        return (g.const(np.full(shape, base, dtype=np.int64), "int32"),)
    steps = n.bit_length()
    rank = len(shape)
    is_wide = isinstance(tx, Wide) or not fits(min(active), max(active), "int32")
    table_hi = [v >> 32 for v in active]
    table_lo = [wide._lo_word(v) for v in active]
    xs: list[Val] = [tx.hi, tx.lo] if isinstance(tx, Wide) else (
        [g.ars(g.i32(tx), 31), g.i32(tx)] if is_wide else [g.i32(tx)])

    def step(st: list[Val]) -> list[Val]:
        """One halving step of the search: pos = #{active t <= x} over the bits so far."""
        pos, stride, *xv = st
        cand = g.add(pos, stride)
        idx = g.maximum(g.minimum(g.addc(cand, -1), g.scalar(n - 1, rank)), g.scalar(0, rank))
        if is_wide:
            ok = _wide_ge(g, Wide(xv[0], xv[1], 0, 0), g.lookup(table_hi, idx, dtype="int32"),
                          g.lookup(table_lo, idx, dtype="int32"))
        else:
            ok = g.ge(xv[0], g.lookup(active, idx, dtype="int32"))
        ok = g.land(ok, g.ge(g.scalar(n, rank), cand))
        new_pos = g.select(ok, cand, pos)
        return [g.with_interval(new_pos, 0, n), g.ars(stride, 1), *xv]

    pos0 = g.widen(g.tile(g.scalar(0, rank), list(shape)), 0, n)
    stride0 = g.widen(g.scalar(1 << (steps - 1), rank), 0, 1 << (steps - 1))
    pos = g.loop(steps, [pos0, stride0, *xs], step)[0]
    out = g.addc(pos, base) if base else pos
    return (g.with_interval(out, base, base + n),)


def _wide_ge(g: Graph, x: Wide, th: Val, tl: Val) -> Val:
    """Bool x >= t for two-word x and t (same layout)."""
    flip = g.scalar(-(1 << 31), th.rank)
    hi_gt = g.gt(x.hi, th)
    hi_eq = g.eq(x.hi, th)
    lo_ge = g.ge(g.bxor(x.lo, flip), g.bxor(tl, flip))
    return g.lor(hi_gt, g.land(hi_eq, lo_ge))


def lookup(g: Graph, x: Operand, table: Operand, *, offset: int) -> tuple[Value]:
    tab = _const_values(table, "lookup table").ravel()
    idx = as_i32(g, x)
    if offset:
        idx = g.addc(idx, -offset)
    if idx.lo < 0 or idx.hi >= tab.size:
        lo, hi = max(idx.lo, 0), min(idx.hi, tab.size - 1)
        if lo > hi:
            raise ExportError(f"lookup: indices [{idx.lo}, {idx.hi}] miss the table")
        g.assumptions.append(f"lookup: index within a table of {tab.size} (refq-checked)")
        idx = g.with_interval(idx, lo, hi) if idx.lo <= lo and hi <= idx.hi else idx
    vlo, vhi = int(tab.min()), int(tab.max())
    if not fits(vlo, vhi, "int32"):
        raise ExportError("lookup: a table beyond int32 is not translated")
    return (g.lookup(tab, idx),)


MOVES: dict[str, Moves] = {
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
    **SWIN_MOVES,
}

__all__ = ["MOVES"]
