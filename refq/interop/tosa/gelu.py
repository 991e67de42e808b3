"""refq's integer GELU variants as TOSA sequences.

``gelu.lut``: out = T[x - in_min]: TABLE for an int8 input and an int8 table (TOSA's 256-entry
int8 lookup, indexed by x + 128), else one GATHER of the table at x - in_min.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from refq.interop.tosa import intops, wide
from refq.interop.tosa.graph import ExportError, Graph, Val, fits
from refq.interop.tosa.values import Operand, Value, as_i32, tensor
from refq.intmath import INT8, IntFormat
from refq.ops.gelu import GeluLutParams, IBertGeluParams, ShiftGeluParams


def lut(g: Graph, ins: Sequence[Operand], p: GeluLutParams, out: IntFormat) -> Value:
    table = np.asarray(p.table, dtype=np.int64)
    t = tensor(g, ins[0])
    if p.in_format == INT8 and fits(int(table.min()), int(table.max()), "int8"):
        return g.table(g.cast(as_i32(g, t), "int8"), table)
    idx = g.addc(as_i32(g, t), -p.in_format.min)
    return g.lookup(table, idx)





def ibert(g: Graph, ins: Sequence[Operand], p: IBertGeluParams, out: IntFormat) -> Value:
    """``gelu.ibert`` (refq.ops.gelu.gelu_ibert): sgn·((min(|q|, -b) + b)² + c) >> 14, then
    q·(y + shift_int); the erf polynomial and the output are checked by refq (int32 and
    int<out_bits>), which the export relies on where the intervals do not prove them."""
    op = "gelu.ibert"
    q = as_i32(g, ins[0])
    a = g.abs(g.clamp(q, p.b_int, -p.b_int))  # min(|q|, -b) without |-2^31|
    ab = g.addc(a, p.b_int)  # in [b, 0]
    poly = g.add(g.mul(ab, ab), g.scalar(p.c_int, q.rank),
                 within=(-(2**31), 2**31 - 1, f"{op}: erf polynomial within int32 "
                         "(refq-checked)"))
    y = g.mul(intops.sign(g, q), poly)
    y = g.ars(y, p.erf_shift)
    t = g.addc(y, p.shift_int)
    if p.out_bits <= 32:
        lim = (1 << (p.out_bits - 1)) - 1
        return g.mul(q, t, within=(-lim - 1, lim, f"{op}: output within int{p.out_bits} "
                                   "(refq-checked)"))
    return wide.mul64(g, q, t)


def shiftgelu(g: Graph, ins: Sequence[Operand], p: ShiftGeluParams, out: IntFormat) -> Value:
    """``gelu.shiftgelu`` (refq.ops.gelu.gelu_shiftgelu): x·σ(1.702x) with the I-ViT
    shift-exp saturated at 2^31 - 1 (the sum saturated likewise)."""
    op = "gelu.shiftgelu"
    q = as_i32(g, ins[0])
    m = g.reduce("MAX", q, -1)
    d = g.sub(q, m, proven=(-(q.hi - q.lo), 0),
              within=(-(2**31), 0, f"{op}: x - max within int32 (refq-checked)"))
    e1 = _shift_exp_sat(g, d, p.x0_int, p.n)
    neg_m = g.sub(g.scalar(0, m.rank), m, within=(-(2**31) + 1, 2**31 - 1,
                                                   f"{op}: -max within int32"))
    e2 = _shift_exp_sat(g, neg_m, p.x0_int, p.n)
    total = intops.saturating_add(g, e1, e2)
    total = g.maximum(total, g.scalar(1, total.rank))
    factor = g.intdiv(g.scalar(2**31 - 1, total.rank), total)
    # e1·factor <= (2^31-1)·e1/min(e1 + e2, 2^31-1) <= 2^31-1
    sig = g.ars(g.mul(e1, factor, proven=(0, 2**31 - 1)), 32 - p.out_bits)
    return g.mul(q, sig, within=(-(2**31), 2**31 - 1, f"{op}: output within int32 "
                                 "(refq-checked)"))


def _shift_exp_sat(g: Graph, d: Val, x0: int, n: int) -> Val:
    """refq.ops.gelu._shift_exp_sat for any sign of d, saturated to [0, 2^31 - 1]."""
    u = g.sub(d, g.ars(d, 4), within=(-(2**31), 2**31 - 1, "shiftgelu: d - d/16 in int32"))
    t = g.add(u, g.ars(d, 1), within=(-(2**31), 2**31 - 1, "shiftgelu: d·log2e in int32 "
                                      "(refq int64)"))
    t = g.maximum(t, g.scalar(n * x0, t.rank))
    # q = ⌊t / x0⌋ (x0 < 0): t may be positive here (the -max term), so floor explicitly
    q = intops.round_div_const(g, g.sub(g.scalar(0, t.rank), t, within=(
        -(2**31) + 1, 2**31 - 1, "shiftgelu: -t in int32")), -x0, "floor")
    r = g.sub(t, g.mul(q, g.scalar(x0, q.rank), within=(-(2**31), 2**31 - 1,
                                                           "shiftgelu: x0·q in int32")),
              proven=(x0 + 1, 0))
    sh = g.sub(g.scalar(n, q.rank), q, within=(-(2**31), 2**31 - 1, "shiftgelu: n - q"))
    base = g.sub(r, g.scalar(2 * x0, r.rank))  # in (-x0, -2x0], positive
    top = 2**31 - 1
    big = g.ge(sh, g.scalar(32, sh.rank))
    shc = g.maximum(g.minimum(sh, g.scalar(31, sh.rank)), g.scalar(0, sh.rank))
    # (base << sh) >> 1 saturated at 2^31 - 1: base·2^(sh-1) > top  <=>  base > top >> (sh-1)
    sh1 = g.maximum(g.addc(shc, -1), g.scalar(0, shc.rank))
    limit = g.ars(g.scalar(top, sh1.rank), sh1)
    over = g.land(g.ge(shc, g.scalar(1, shc.rank)), g.gt(base, limit))
    up = g.shl(base, sh1, wrap=True)
    val = g.select(g.ge(shc, g.scalar(1, shc.rank)), up, g.ars(base, 1))
    sat = g.lor(big, over)
    out = g.select(sat, g.scalar(top, val.rank), g.with_interval(val, 0, top))
    neg = g.gt(g.scalar(0, sh.rank), sh)  # sh < 0: base·2^sh >> 1 = 0 for base < 2^|sh|+1
    if sh.lo < 0:
        raise ExportError("gelu.shiftgelu: negative shift-exp exponent (d > 0 beyond n·x0)")
    del neg
    return g.with_interval(out, 0, top)



__all__ = ["ibert", "lut", "shiftgelu"]
