"""Fused stages of the element-wise movement ops (see :mod:`refq.program.steps`):
``threshold`` then ``lookup`` as one gather, and ``threshold``, ``lookup``, ``affine``,
``add_exact``, ``shift_left`` with constant arguments on row blocks. Each is built at plan
time only where it gives the plain op's integers; its output lies in the declaration
(proven at plan time, else checked per block: Decline, and the plain steps report).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.intmath import IntFormat
from refq.program.buckets import BucketLookup, bucket_lookup
from refq.program.carriers import dtype_range, widen, within
from refq.program.context import PlanContext, static_proof
from refq.program.ir import Op
from refq.program.movement import affine, threshold
from refq.program.movement import lookup as lookup_op
from refq.program.sources import Buffers, check_block, out_decl
from refq.program.steps import Decline, Env


class ThresholdLookupStage:
    """``threshold`` then ``lookup`` of constant thresholds and table, the codes read by
    no one else: ``table[#{t <= x} - offset]``. When x's declared range is small, by one
    gather from a composite table made at plan time over that whole range
    (``composite[v - lo] = table[#{t <= v} - offset]``, every entry a valid index — else no
    stage); for evenly spread thresholds, by the bucket tables of
    :mod:`refq.program.buckets`; otherwise the two ops on the block: the codes by
    :func:`refq.program.movement.threshold`, then one gather, each index checked to lie in
    the table unless every code 0..len(t) does (Decline: the plain ops raise the error).
    The codes lie in their declaration (0..len(t), plan time) and the table's values in
    the output's (plan time, else checked)."""

    def __init__(self, thresholds: npt.NDArray[np.int64], table: npt.NDArray[np.int64],
                 offset: int, composite: npt.NDArray[Any] | None, lo: int,
                 out_fmt: IntFormat, out_proven: bool,
                 buckets: BucketLookup | None = None) -> None:
        self.t, self.table, self.offset, self.composite, self.lo = (
            thresholds, table, offset, composite, lo)
        self.buckets = buckets
        self.j32: npt.NDArray[np.int32] | None = None
        self.out_fmt, self.out_proven = out_fmt, out_proven
        self.buf = Buffers()
        # every code 0..len(t) minus the offset indexes the table: no per-block check
        self.codes_index = -offset >= 0 and thresholds.size - offset < table.size

    def prepare(self, env: Env, shape: tuple[int, ...]) -> None:
        return None

    def _j(self, shape: tuple[int, ...]) -> npt.NDArray[np.int32]:
        n = int(np.prod(shape))
        if self.j32 is None or self.j32.size < n:
            self.j32 = np.empty(n, dtype=np.int32)
        return self.j32[:n].reshape(shape)

    def __call__(self, block: npt.NDArray[Any], r0: int, r1: int,
                 env: Env) -> npt.NDArray[Any]:
        if self.composite is not None:
            if self.lo:
                idx = self.buf.get("i", block.shape)
                np.subtract(block, np.int64(self.lo), out=idx, casting="unsafe")
            else:
                idx = block
            out: npt.NDArray[Any] = np.take(self.composite, idx)
        elif self.buckets is not None:
            out = self.buckets(block, self.buf.get("w", block.shape), self._j(block.shape))
        else:  # the two ops on the block: codes = #{t <= x}, then table[code - offset]
            (idx,) = threshold(widen(block), self.t)
            if self.offset:
                idx -= np.int64(self.offset)
            if not self.codes_index and idx.size and (
                    int(idx.min()) < 0 or int(idx.max()) >= self.table.size):
                raise Decline  # outside the table: the plain lookup raises its RangeError
            out = np.take(self.table, idx)
        if not self.out_proven:
            check_block(out, self.out_fmt)
        return out


_COMPOSITE_MAX = 1 << 17
"""Largest declared input range given a plan-time composite threshold+lookup table."""


def threshold_lookup_stage(ctx: PlanContext, thr: Op, lut: Op) -> ThresholdLookupStage | None:
    t = ctx.const(thr.inputs[1]) if len(thr.inputs) == 2 else None
    table = ctx.const(lut.inputs[1]) if len(lut.inputs) == 2 else None
    xd = ctx.decl(thr.inputs[0])
    code_d = ctx.decl(thr.outputs[0]) if len(thr.outputs) == 1 else None
    out_fmt = out_decl(ctx, lut)
    if t is None or table is None or xd is None or code_d is None or out_fmt is None:
        return None
    if table.ndim != 1 or set(lut.params) != {"offset"} or t.size == 0 or table.size == 0:
        return None
    tv = t.ravel()
    if tv.size > 1 and bool(np.any(np.diff(tv) < 0)):
        return None  # threshold raises SpecError: plain
    if not within(0, int(tv.size), code_d.fmt):
        return None  # the codes would be checked: plain
    offset = int(lut.params["offset"])
    out_proven = within(int(table.min()), int(table.max()), out_fmt)
    lo, hi = xd.fmt.min, xd.fmt.max
    composite = None
    if hi - lo < _COMPOSITE_MAX:
        codes = np.searchsorted(tv, np.arange(lo, hi + 1, dtype=np.int64), side="right")
        idx = codes - offset
        if int(idx.min()) < 0 or int(idx.max()) >= table.size:
            return None
        composite = table[idx]
        if out_proven:
            for dt in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
                dmin, dmax = dtype_range(np.dtype(dt))
                if dmin <= int(composite.min()) and int(composite.max()) <= dmax:
                    composite = composite.astype(dt)
                    break
        composite.setflags(write=False)
    buckets = None if composite is not None else bucket_lookup(tv, table, offset, lo, hi)
    return ThresholdLookupStage(tv, table, offset, composite, lo, out_fmt, out_proven, buckets)


class MoveStage:
    """An element-wise movement op on blocks: ``threshold`` / ``lookup`` with constant
    second argument, ``affine`` (x·m + b) and ``add_exact`` with constants broadcast along
    the last axis only, ``shift_left``; the plain function on the block (the same integers)
    and the output checked against the declaration unless proven."""

    def __init__(self, fn: Any, consts: list[npt.NDArray[np.int64]], kw: dict[str, Any],
                 out_fmt: IntFormat, out_proven: bool, per_channel: bool) -> None:
        self.fn, self.consts, self.kw = fn, consts, kw
        self.out_fmt, self.out_proven, self.per_channel = out_fmt, out_proven, per_channel

    def prepare(self, env: Env, shape: tuple[int, ...]) -> None:
        if self.per_channel and any(c.ndim and c.shape[-1] not in (1, shape[-1])
                                    for c in self.consts):
            raise Decline

    def __call__(self, block: npt.NDArray[Any], r0: int, r1: int,
                 env: Env) -> npt.NDArray[Any]:
        (out,) = self.fn(widen(block), *self.consts, **self.kw)
        if out.shape != block.shape:
            raise Decline
        if not self.out_proven:
            check_block(out, self.out_fmt)
        return np.asarray(out)


def _threshold(x: Any, t: Any) -> Any:
    return threshold(x, t)


def _lookup(x: Any, table: Any, *, offset: int) -> Any:
    return lookup_op(x, table, offset=offset)


def _affine(x: Any, m: Any, b: Any) -> Any:
    return affine(x, m, b)  # range-checked in int64


def _add_exact(x: Any, b: Any) -> Any:
    return (x + b,)


def _shift_left(x: Any, *, shift: int) -> Any:
    return (x << np.int64(shift),)


_MOVES = {"threshold": _threshold, "lookup": _lookup, "affine": _affine,
          "add_exact": _add_exact, "shift_left": _shift_left}


def move_stage(ctx: PlanContext, idx: int, op: Op, main: int) -> MoveStage | None:
    fn = _MOVES.get(op.key)
    out_fmt = out_decl(ctx, op)
    if op.kind != "move" or fn is None or out_fmt is None or main != 0:
        return None
    consts = []
    for name in op.inputs[1:]:
        c = ctx.const(name)
        if c is None:
            return None
        consts.append(c)
    if op.key in ("affine", "add_exact"):
        for c in consts:  # broadcast along the last axis only: (), (C,), (1, ..., C)
            if any(d != 1 for d in c.shape[:-1]):
                return None
        consts = [c.reshape(c.shape[-1:]) if c.ndim else c for c in consts]
    if op.key == "threshold":
        tv = consts[0].ravel()
        if tv.size > 1 and bool(np.any(np.diff(tv) < 0)):
            return None
    if op.key == "lookup" and consts[0].ndim != 1:
        return None
    kw = dict(op.params)
    expect = {"threshold": set(), "affine": set(), "add_exact": set(), "lookup": {"offset"},
              "shift_left": {"shift"}}[op.key]
    if set(kw) != expect:
        return None
    proven = bool(static_proof(ctx, idx, op, out_fmt))
    return MoveStage(fn, consts, kw, out_fmt, proven, op.key in ("affine", "add_exact"))


__all__ = ["MoveStage", "ThresholdLookupStage", "move_stage", "threshold_lookup_stage"]
