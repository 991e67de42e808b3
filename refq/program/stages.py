"""Fused stages of kernels: single kernel ops applied to row blocks (see
:mod:`refq.program.steps`; movement ops: :mod:`refq.program.move_stages`; the GEMMs that
start a chain: :mod:`refq.program.sources`).

Each builder looks at one op at plan time and returns a stage only when it can reproduce
the op's plain result — values and range checks — on row blocks; otherwise None and the op
runs plain. A stage's output lies in the op's declared format: proven at plan time
(``out_proven``) or checked per block (Decline on failure, so the plain step reports the
error). Inputs are within their own
declared formats (the interpreter's invariant); where those do not prove the kernel's input
format, the stage checks them.

Row-local kernels: every output row (last axis) depends only on the same row of each input.
:data:`ROW_LOCAL` lists the variants run this way by calling their own function on blocks.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import numpy.typing as npt

from refq.intmath import IntFormat
from refq.intmath.dyadic import DyadicRows, dyadic_rows
from refq.intmath.rounding import ROUNDINGS, Rounding
from refq.ops.registry import lookup
from refq.ops.requantize import RequantParams
from refq.program.carriers import widen, within
from refq.program.context import PlanContext
from refq.program.ir import Op
from refq.program.move_stages import move_stage
from refq.program.sources import Buffers, check_block, out_decl
from refq.program.steps import Decline, Env, Stage, env_rows

ROW_LOCAL = frozenset({
    "requantize.double", "requantize.single", "requantize.dyadic",
    "softmax.refq", "softmax.ibert", "softmax.lis", "softmax.shiftmax",
    "softmax.shiftmax_deploy", "softmax.tflite",
    "gelu.ibert", "gelu.shiftgelu", "gelu.lut",
    "layernorm.refq", "layernorm.ibert", "layernorm.ivit",
    "add.ivit", "add.shared_shift",
})
"""Kernel variants whose output rows depend only on the same rows of their inputs (a test
checks each against its whole-tensor result on row-split inputs)."""


# --- stages ----------------------------------------------------------------------------------


def _rounding(name: Any) -> Rounding | None:
    """``name`` if it is a rounding the kernels accept, else None (no stage)."""
    return cast(Rounding, name) if name in ROUNDINGS else None


class DyadicStage:
    """``requantize.dyadic`` on blocks (:class:`refq.intmath.dyadic.DyadicRows`: the code
    the kernel itself runs): x - in_zero_point, bound |x| <= xlim proven from x's
    declaration or checked per block; the output is saturated into out_format (proven to
    fit the declaration, else checked)."""

    def __init__(self, kern: DyadicRows, in_zp: int, x_proven: bool, out_fmt: IntFormat,
                 out_proven: bool, channels: int, narrow: bool, xbound: int) -> None:
        self.kern, self.in_zp, self.x_proven = kern, in_zp, x_proven
        # |x - in_zp| <= xbound by x's declaration: spares the tie scan where it proves
        # there are no ties (DyadicRows.tie_free)
        self.xmax = xbound if kern.tie_free(xbound) else None
        self.out_fmt, self.out_proven, self.channels = out_fmt, out_proven, channels
        self.narrow = narrow  # every quotient fits int32 (x_proven and kern.int32_for)
        self.buf = Buffers()
        self.tiles: dict[int, npt.NDArray[np.int64]] = {}
        self.out32: npt.NDArray[np.int32] | None = None

    def prepare(self, env: Env, shape: tuple[int, ...]) -> None:
        if shape[-1] != self.channels and self.kern.mult.ndim:
            raise Decline

    def __call__(self, block: npt.NDArray[Any], r0: int, r1: int,
                 env: Env) -> npt.NDArray[Any]:
        x = block
        if self.in_zp:
            x = self.buf.get("x", block.shape)
            np.subtract(block, np.int64(self.in_zp), out=x, casting="unsafe")
        if not self.x_proven and not self.kern.covers_values(x):
            raise Decline
        tile = self.tiles.get(block.shape[0])
        if tile is None:
            tile = self.tiles[block.shape[0]] = self.kern.tile(block.shape[0])
        y = self.buf.get("y", block.shape)
        out = None
        if self.narrow:
            out = self.out32
            if out is None or out.size < block.size:
                out = self.out32 = np.empty(block.size, dtype=np.int32)
            out = out[: block.size].reshape(block.shape)
        res = self.kern.apply(x, y, self.buf.get("t", block.shape), tile, out, self.xmax)
        if not self.out_proven:
            check_block(res, self.out_fmt)
        return res


def dyadic_stage(ctx: PlanContext, idx: int, op: Op, main: int) -> DyadicStage | None:
    p = ctx.params(idx)
    if not isinstance(p, RequantParams) or p.family != "dyadic" or len(op.inputs) != 1:
        return None
    xd, out_fmt = ctx.decl(op.inputs[0]), out_decl(ctx, op)
    if xd is None or out_fmt is None or not xd.shape or xd.shape[-1] < 1:
        return None
    c = xd.shape[-1]
    if len(p.multiplier) not in (1, c) or len(p.shift) != len(p.multiplier):
        return None
    fmt = p.out_format
    rounding = _rounding(p.rounding)
    if rounding is None:
        return None  # the plain kernel raises its SpecError
    kern = dyadic_rows(np.asarray(p.multiplier, dtype=np.int64),
                       np.asarray(p.shift, dtype=np.int64), rounding,
                       p.out_zero_point, fmt.min, fmt.max, c)
    if kern is None:
        return None
    zp = p.in_zero_point
    lo, hi = xd.fmt.min - zp, xd.fmt.max - zp
    if lo < -(2**63) or hi >= 2**63:
        return None
    x_proven = max(-lo, hi) <= kern.xlim
    narrow = x_proven and kern.int32_for(max(-lo, hi))
    return DyadicStage(kern, zp, x_proven, out_fmt, within(fmt.min, fmt.max, out_fmt), c,
                       narrow, max(-lo, hi))


class LutStage:
    """``gelu.lut``: out = table[x - in_min] by one gather (x proven or checked within
    in_format, so every index is inside the table); table values fit the declaration
    (plan time) or the block is checked."""

    def __init__(self, table: npt.NDArray[Any], offset: int, in_fmt: IntFormat,
                 x_proven: bool, out_fmt: IntFormat, out_proven: bool) -> None:
        self.table, self.offset, self.in_fmt, self.x_proven = table, offset, in_fmt, x_proven
        self.out_fmt, self.out_proven = out_fmt, out_proven
        self.buf = Buffers()

    def prepare(self, env: Env, shape: tuple[int, ...]) -> None:
        return None

    def __call__(self, block: npt.NDArray[Any], r0: int, r1: int,
                 env: Env) -> npt.NDArray[Any]:
        if not self.x_proven:
            check_block(block, self.in_fmt)
        idx = self.buf.get("i", block.shape)
        np.subtract(block, np.int64(self.offset), out=idx, casting="unsafe")
        out: npt.NDArray[Any] = np.take(self.table, idx)
        if not self.out_proven:
            check_block(out, self.out_fmt)
        return out


def gelu_lut_stage(ctx: PlanContext, idx: int, op: Op, main: int) -> LutStage | None:
    p = ctx.params(idx)
    if p is None or len(op.inputs) != 1 or type(p).__name__ != "GeluLutParams":
        return None
    xd, out_fmt = ctx.decl(op.inputs[0]), out_decl(ctx, op)
    if xd is None or out_fmt is None:
        return None
    table = np.asarray(p.table, dtype=np.int64)
    table.setflags(write=False)
    return LutStage(table, p.in_format.min, p.in_format,
                    within(xd.fmt.min, xd.fmt.max, p.in_format), out_fmt,
                    within(int(table.min()), int(table.max()), out_fmt))


class AddStage:
    """``add.ivit`` on blocks: clamp(round((a - za)·ma/2^ca) + round((b - zb)·mb/2^cb) + zo,
    out_format) — the kernel's integers, each branch by :class:`DyadicRows` (the code of
    the kernel's own requantization), the output zero point folded into b's branch
    (⌊(u + zo·2^c)/2^c⌋ = ⌊u/2^c⌋ + zo). Taken when a and b lie in the kernel's formats
    and a - za, b - zb in int32 by their declarations (else the kernel checks values:
    no stage), and every branch and the sum fit int32 (proven here)."""

    def __init__(self, ra: DyadicRows, rb: DyadicRows, za: int, zb: int, main: int,
                 other: str, fmt: IntFormat, out_fmt: IntFormat, out_proven: bool) -> None:
        self.ra, self.rb, self.za, self.zb, self.main, self.other = ra, rb, za, zb, main, other
        self.fmt, self.out_fmt, self.out_proven = fmt, out_fmt, out_proven
        self.buf = Buffers()
        self.o32: dict[str, npt.NDArray[np.int32]] = {}

    def prepare(self, env: Env, shape: tuple[int, ...]) -> None:
        if env[self.other].shape != shape:
            raise Decline

    def _i32(self, role: str, shape: tuple[int, ...]) -> npt.NDArray[np.int32]:
        n = int(np.prod(shape))
        buf = self.o32.get(role)
        if buf is None or buf.size < n:
            buf = self.o32[role] = np.empty(n, dtype=np.int32)
        return buf[:n].reshape(shape)

    def __call__(self, block: npt.NDArray[Any], r0: int, r1: int,
                 env: Env) -> npt.NDArray[Any]:
        other = env_rows(env, self.other, block.shape[-1])[r0:r1]
        a, b = (block, other) if self.main == 0 else (other, block)
        shape = block.shape
        t = self.buf.get("t", shape)
        y = self.buf.get("y", shape)
        if self.za:
            a = np.subtract(a, np.int64(self.za), out=self.buf.get("a", shape),
                            casting="unsafe")
        ya = self.ra.apply(a, y, t, self.ra.mult, self._i32("a", shape))
        if self.zb:
            b = np.subtract(b, np.int64(self.zb), out=self.buf.get("b", shape),
                            casting="unsafe")
        yb = self.rb.apply(b, y, t, self.rb.mult, self._i32("b", shape))
        np.add(ya, yb, out=ya)  # |ya| + |yb| < 2^31: proven at plan time
        np.clip(ya, np.int32(self.fmt.min), np.int32(self.fmt.max), out=ya)
        if not self.out_proven:
            check_block(ya, self.out_fmt)
        return ya


def add_stage(ctx: PlanContext, idx: int, op: Op, main: int) -> AddStage | None:
    from refq.ops.add import AddParams, _branch_bound

    p = ctx.params(idx)
    if not isinstance(p, AddParams) or p.scheme != "ivit" or len(op.inputs) != 2:
        return None
    other = op.inputs[1 - main]
    ad, bd, out_fmt = ctx.decl(op.inputs[0]), ctx.decl(op.inputs[1]), out_decl(ctx, op)
    if ad is None or bd is None or out_fmt is None or other in ctx.program.consts:
        return None
    if not (within(ad.fmt.min, ad.fmt.max, p.a_format)
            and within(bd.fmt.min, bd.fmt.max, p.b_format)):
        return None
    i32 = IntFormat(32, True)
    fmt = p.out_format
    if not (within(p.a_format.min - p.a_zero_point, p.a_format.max - p.a_zero_point, i32)
            and within(p.b_format.min - p.b_zero_point, p.b_format.max - p.b_zero_point, i32)
            and within(fmt.min, fmt.max, i32)):
        return None
    r = _rounding(p.rounding)
    if r is None:
        return None
    big = 2**63 - 1
    ra = dyadic_rows(p.a_multiplier, p.a_shift, r, 0, -big - 1, big, 1)
    rb = dyadic_rows(p.b_multiplier, p.b_shift, r, p.out_zero_point, -big - 1, big, 1)
    if ra is None or rb is None:
        return None
    amax = max(-(ad.fmt.min - p.a_zero_point), ad.fmt.max - p.a_zero_point)
    bmax = max(-(bd.fmt.min - p.b_zero_point), bd.fmt.max - p.b_zero_point)
    if amax > ra.xlim or bmax > rb.xlim or not ra.int32_for(amax) or not rb.int32_for(bmax):
        return None
    total = (_branch_bound(p.a_format, p.a_zero_point, p.a_multiplier, p.a_shift)
             + _branch_bound(p.b_format, p.b_zero_point, p.b_multiplier, p.b_shift)
             + abs(p.out_zero_point))
    if total >= 2**31 - 1:
        return None
    return AddStage(ra, rb, p.a_zero_point, p.b_zero_point, main, other, fmt, out_fmt,
                    within(fmt.min, fmt.max, out_fmt))


class RowKernelStage:
    """A row-local kernel (:data:`ROW_LOCAL`) called on row blocks: its own function on
    the block (widened to int64) and the same rows of its other inputs (tensors of the
    chain's shape), every check its own; the output is checked against the declaration
    unless proven."""

    def __init__(self, fn: Any, params: Any, main: int, others: list[str | None],
                 out_fmt: IntFormat, out_proven: bool) -> None:
        self.fn, self.params, self.main, self.others = fn, params, main, others
        self.out_fmt, self.out_proven = out_fmt, out_proven

    def prepare(self, env: Env, shape: tuple[int, ...]) -> None:
        for name in self.others:
            if name is not None and env[name].shape != shape:
                raise Decline

    def __call__(self, block: npt.NDArray[Any], r0: int, r1: int,
                 env: Env) -> npt.NDArray[Any]:
        c = block.shape[-1]
        args = [widen(block) if name is None else widen(env_rows(env, name, c)[r0:r1])
                for name in self.others]
        out: npt.NDArray[Any] = self.fn(*args, self.params)
        if out.shape != block.shape:
            raise Decline
        if not self.out_proven:
            check_block(out, self.out_fmt)
        return out


def row_kernel_stage(ctx: PlanContext, idx: int, op: Op, main: int) -> RowKernelStage | None:
    if op.kind != "kernel" or op.key not in ROW_LOCAL or len(op.outputs) != 1:
        return None
    p = ctx.params(idx)
    out_fmt = out_decl(ctx, op)
    if p is None or out_fmt is None:
        return None
    v = lookup(op.key)
    try:
        v.check_params(p)
    except Exception:
        return None
    if len(op.inputs) != len(v.inputs):
        return None
    others: list[str | None] = []
    for pos, name in enumerate(op.inputs):
        if pos == main:
            others.append(None)
        elif name in ctx.program.consts or ctx.decl(name) is None:
            return None
        else:
            others.append(name)
    try:
        out = v.out_format(p)
        proven = v.output != "unchecked" and within(out.min, out.max, out_fmt)
    except Exception:
        proven = False
    return RowKernelStage(v.fn, p, main, others, out_fmt, proven)


def stage_for(ctx: PlanContext, idx: int, op: Op, main: int) -> Stage | None:
    """The fused stage of op ``idx`` fed on input position ``main``, or None."""
    if op.kind == "kernel":
        if op.key == "requantize.dyadic":
            return dyadic_stage(ctx, idx, op, main)
        if op.key == "gelu.lut":
            return gelu_lut_stage(ctx, idx, op, main)
        if op.key == "add.ivit":
            got = add_stage(ctx, idx, op, main)
            if got is not None:
                return got
        return row_kernel_stage(ctx, idx, op, main)
    if op.kind == "move":
        return move_stage(ctx, idx, op, main)
    return None


__all__ = ["ROW_LOCAL", "AddStage", "DyadicStage", "LutStage", "RowKernelStage", "stage_for"]
