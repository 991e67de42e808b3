"""Block sources of fused chains (see :mod:`refq.program.steps`): a tensor of the
environment, or a GEMM (``linear.gemm`` with constant weights, ``matmul.gemm``) whose exact
int32 result blocks (:func:`refq.intmath.gemm_blocks.exact_matmul_blocks`) are handed to
the chain's stages while they are in cache — and the helpers the stages share.

A source is built at plan time only when it reproduces the op's plain result — values and
range checks: each check of the plain kernel is proven here from declared formats and
constants, or run per call (Decline on failure, so the plain step reports the error).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.intmath import IntFormat
from refq.intmath.gemm_blocks import exact_matmul_blocks
from refq.ops.linear import _narrow, _operand_bound
from refq.ops.registry import lookup
from refq.program.carriers import dtype_range, within
from refq.program.context import PlanContext
from refq.program.ir import Op
from refq.program.steps import Decline, Env, Source


def narrowest(arr: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """A read-only copy of ``arr`` in the narrowest of int8/int16/int32 holding its values
    (int64 if none does)."""
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    out: npt.NDArray[Any] = arr
    for dt in (np.int8, np.int16, np.int32):
        dmin, dmax = dtype_range(np.dtype(dt))
        if dmin <= lo and hi <= dmax:
            out = arr.astype(dt)
            break
    else:
        out = arr.copy()
    out.setflags(write=False)
    return out


def check_block(block: npt.NDArray[Any], fmt: IntFormat) -> None:
    """Decline unless every element of ``block`` lies in ``fmt``."""
    if block.size and (int(block.min()) < fmt.min or int(block.max()) > fmt.max):
        raise Decline


def out_decl(ctx: PlanContext, op: Op) -> IntFormat | None:
    if len(op.outputs) != 1:
        return None
    d = ctx.decl(op.outputs[0])
    return None if d is None else d.fmt


class Buffers:
    """Per-stage int64 work buffers of one block (kept on the plan; block-sized)."""

    def __init__(self) -> None:
        self.bufs: dict[str, npt.NDArray[np.int64]] = {}

    def get(self, role: str, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
        n = int(np.prod(shape))
        buf = self.bufs.get(role)
        if buf is None or buf.size < n:
            buf = self.bufs[role] = np.empty(n, dtype=np.int64)
        return buf[:n].reshape(shape)


# --- sources ---------------------------------------------------------------------------------


class EnvSource:
    """Row blocks of a tensor of the environment."""

    def __init__(self, name: str) -> None:
        self.name = name

    def prepare(self, env: Env) -> tuple[int, ...]:
        shape: tuple[int, ...] = env[self.name].shape
        return shape

    def blocks(self, env: Env, rows: int) -> Iterator[tuple[int, int, npt.NDArray[Any]]]:
        arr = env[self.name]
        x2 = arr.reshape(-1, arr.shape[-1])
        for r0 in range(0, x2.shape[0], rows):
            r1 = min(r0 + rows, x2.shape[0])
            yield r0, r1, x2[r0:r1]


class LinearSource:
    """``linear.gemm`` with a constant weight and bias as a block source:
    acc = x @ (W - zw)^T - zx·Σ_k (W - zw) + bias — the same integers as
    (x - zx) @ (W - zw)^T + bias, by expanding the product; the zero-point term is folded
    into the bias at plan time, so x is multiplied as it is stored. Exact int32 blocks
    (:func:`refq.intmath.gemm_blocks.exact_matmul_blocks`, K·max|x|·max|W - zw| < 2^31,
    proven here from a_format), then the bias in int32 when max|x@W'| + max|bias'| < 2^31
    (proven), else in int64.

    The plain kernel's checks, each proven here or checked per run: x within a_format
    (from x's declaration, or one min/max scan); W within b_format and bias within int32
    (the constants, plan time); acc and acc + bias within int<acc_bits>: proven,
    K·max|x - zx|·max|w - zw| + max|bias| <= the format's max, with max|x - zx| from
    a_format and max|w - zw| from the constant itself (where the kernel's own proof, which
    takes it from b_format, does not reach, its value check then never fails)."""

    def __init__(self, x: str, a_fmt: IntFormat, x_proven: bool, wt: npt.NDArray[Any],
                 bias: npt.NDArray[np.int64], bias32: bool, out_fmt: IntFormat,
                 out_proven: bool) -> None:
        self.x, self.a_fmt, self.x_proven = x, a_fmt, x_proven
        self.wt, self.bias, self.bias32 = wt, bias, bias32
        self.out_fmt, self.out_proven = out_fmt, out_proven
        self.k, self.n = wt.shape
        self.wmax = int(np.abs(wt.astype(np.int64)).max()) if wt.size else 0  # read-only
        self.buf = Buffers()
        self.tiles: dict[int, npt.NDArray[Any]] = {}

    def prepare(self, env: Env) -> tuple[int, ...]:
        x = env[self.x]
        if x.ndim < 1 or x.shape[-1] != self.k:
            raise Decline
        if not self.x_proven:
            check_block(x, self.a_fmt)
        return (*x.shape[:-1], self.n)

    def _tile(self, rows: int) -> npt.NDArray[Any]:
        t = self.tiles.get(rows)
        if t is None:
            dt = np.int32 if self.bias32 else np.int64
            t = np.ascontiguousarray(np.broadcast_to(self.bias.astype(dt), (rows, self.n)))
            self.tiles = {rows: t}
        return t

    def blocks(self, env: Env, rows: int) -> Iterator[tuple[int, int, npt.NDArray[Any]]]:
        tile = self._tile(rows)
        for r0, r1, blk in exact_matmul_blocks(env[self.x], self.wt, rows, self.wmax):
            b = tile[: r1 - r0]
            if self.bias32:  # |x@W'| + |bias'| < 2^31: the int32 sum is exact
                np.add(blk, b, out=blk)
                out: npt.NDArray[Any] = blk
            else:
                out = self.buf.get("acc", blk.shape)
                np.add(blk, b, out=out, casting="unsafe")
            if not self.out_proven:
                check_block(out, self.out_fmt)
            yield r0, r1, out


def linear_source(ctx: PlanContext, idx: int, op: Op) -> LinearSource | None:
    p = ctx.params(idx)
    if p is None or len(op.inputs) not in (2, 3) or len(op.outputs) != 1 or p.requant:
        return None
    v = lookup(op.key)
    try:
        v.check_params(p)
    except Exception:
        return None
    w = ctx.const(op.inputs[1])
    bias = ctx.const(op.inputs[2]) if len(op.inputs) == 3 else None
    xd, out_fmt = ctx.decl(op.inputs[0]), out_decl(ctx, op)
    if w is None or w.ndim != 2 or xd is None or out_fmt is None:
        return None
    if op.inputs[0] in ctx.program.consts:
        return None
    if len(op.inputs) == 3 and bias is None:
        return None
    n, k = w.shape
    if w.size == 0 or not within(int(w.min()), int(w.max()), p.b_format):
        return None
    if bias is not None and (bias.shape not in ((n,), ()) or (bias.size and not within(
            int(bias.min()), int(bias.max()), IntFormat(32, True)))):
        return None
    wz = w - np.int64(p.b_zero_point)
    wmax = int(np.abs(wz).max())
    acc_max = (1 << (p.acc_bits - 1)) - 1
    # W is a constant: its own max|w - zw| bounds every product (no wider than b_format's)
    bound = k * _operand_bound(p.a_format, p.a_zero_point) * wmax
    bias_max = 0 if bias is None or not bias.size else max(-int(bias.min()), int(bias.max()))
    if bound > acc_max or bound + bias_max > acc_max:
        return None  # the kernel checks the values: run it plain
    amax = max(abs(p.a_format.min), abs(p.a_format.max))
    if k * amax * wmax >= 2**31:
        return None
    colsum = wz.sum(axis=1)
    b = (np.zeros(n, dtype=np.int64) if bias is None else np.broadcast_to(bias, (n,))
         ) - np.int64(p.a_zero_point) * colsum
    bias32 = k * amax * wmax + int(np.abs(b).max()) < 2**31
    wt = narrowest(wz).T  # W' in int8/int16/int32, a transposed view
    acc_fmt = IntFormat(p.acc_bits, True)
    out_proven = within(acc_fmt.min, acc_fmt.max, out_fmt)
    x_proven = within(xd.fmt.min, xd.fmt.max, p.a_format)
    return LinearSource(op.inputs[0], p.a_format, x_proven, wt, b, bias32, out_fmt,
                        out_proven)


class MatmulSource:
    """``matmul.gemm`` of two tensors of equal batch shape as a block source: exact int32
    blocks of (a - za) @ (b - zb) (K·max|a - za|·max|b - zb| < 2^31 and <= the
    accumulator's max, proven from the formats); a and b checked against their formats
    unless their declarations prove it."""

    def __init__(self, a: str, b: str, a_fmt: IntFormat, b_fmt: IntFormat, za: int, zb: int,
                 a_proven: bool, b_proven: bool, out_fmt: IntFormat, out_proven: bool) -> None:
        self.a, self.b, self.a_fmt, self.b_fmt, self.za, self.zb = a, b, a_fmt, b_fmt, za, zb
        self.a_proven, self.b_proven = a_proven, b_proven
        self.out_fmt, self.out_proven = out_fmt, out_proven

    def prepare(self, env: Env) -> tuple[int, ...]:
        a, b = env[self.a], env[self.b]
        if a.ndim < 2 or b.ndim < 2 or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
            raise Decline
        if not self.a_proven:
            check_block(a, self.a_fmt)
        if not self.b_proven:
            check_block(b, self.b_fmt)
        return (*a.shape[:-1], b.shape[-1])

    def blocks(self, env: Env, rows: int) -> Iterator[tuple[int, int, npt.NDArray[Any]]]:
        a, b = env[self.a], env[self.b]
        az = _narrow(a, self.a_fmt, self.za)
        bz = _narrow(b, self.b_fmt, self.zb)
        a3 = az.reshape(-1, *a.shape[-2:])
        b3 = bz.reshape(-1, *b.shape[-2:])
        for r0, r1, blk in exact_matmul_blocks(a3, b3, rows):
            if not self.out_proven:
                check_block(blk, self.out_fmt)
            yield r0, r1, blk


def matmul_source(ctx: PlanContext, idx: int, op: Op) -> MatmulSource | None:
    p = ctx.params(idx)
    if p is None or len(op.inputs) != 2 or len(op.outputs) != 1 or p.requant:
        return None
    try:
        lookup(op.key).check_params(p)
    except Exception:
        return None
    ad, bd, out_fmt = ctx.decl(op.inputs[0]), ctx.decl(op.inputs[1]), out_decl(ctx, op)
    if ad is None or bd is None or out_fmt is None or ad.shape[-1:] == (-1,):
        return None
    if any(i in ctx.program.consts for i in op.inputs) or len(ad.shape) < 2:
        return None
    k = ad.shape[-1]
    if k < 0:
        return None
    bound = k * _operand_bound(p.a_format, p.a_zero_point) * _operand_bound(
        p.b_format, p.b_zero_point)
    if bound >= 2**31 or bound > (1 << (p.acc_bits - 1)) - 1:
        return None
    acc_fmt = IntFormat(p.acc_bits, True)
    return MatmulSource(op.inputs[0], op.inputs[1], p.a_format, p.b_format, p.a_zero_point,
                        p.b_zero_point, within(ad.fmt.min, ad.fmt.max, p.a_format),
                        within(bd.fmt.min, bd.fmt.max, p.b_format), out_fmt,
                        within(acc_fmt.min, acc_fmt.max, out_fmt))


SOURCES = {"linear.gemm": linear_source, "matmul.gemm": matmul_source}


def source_for(ctx: PlanContext, idx: int, op: Op) -> Source | None:
    """A GEMM op as the source of a chain, or None."""
    make = SOURCES.get(op.key) if op.kind == "kernel" else None
    return None if make is None else make(ctx, idx, op)


__all__ = ["SOURCES", "Buffers", "EnvSource", "LinearSource", "MatmulSource", "check_block",
           "narrowest", "out_decl", "source_for"]
