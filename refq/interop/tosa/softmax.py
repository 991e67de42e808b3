"""refq's integer softmax variants as TOSA sequences (along the last axis).

``softmax.refq``:
    d = REDUCE_MAX(x) - x                         SUB, int32
    d = MINIMUM(d, D)                             D: the smallest d whose exponent index
                                                  reaches the table's last row (every larger
                                                  d reads the same entry), so the next MUL
                                                  stays within int32
    u = MUL(d, m, shift c - L)                    ⌊(d·m + 2^(c-L-1)) / 2^(c-L)⌋ = refq's
                                                  round_half_up(t / 2^(c-L)); the 48-bit
                                                  product t stays inside MUL
    e = GATHER(E, MINIMUM(u, 21·2^L - 1))         E[k·2^L + j] = round_half_up(T[j] / 2^k)
    Σ = REDUCE_SUM(e)
    q = INTDIV(e·(2^b - 1), Σ); r = e·(2^b-1) - q·Σ
    out = q + [r >= Σ - r]                        round half up of e·(2^b - 1)/Σ
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from refq.interop.tosa import intops, wide
from refq.interop.tosa.graph import ExportError, Graph, Val
from refq.interop.tosa.requant import dyadic
from refq.interop.tosa.values import Operand, Value, as_i32
from refq.interop.tosa.wide import Wide
from refq.intmath import IntFormat
from refq.ops.softmax_ibert import IBertSoftmaxParams, IExpParams
from refq.ops.softmax_refq import _K_MAX, RefqSoftmaxParams, _exp_table
from refq.ops.softmax_shift import ShiftmaxParams


def row_max_diff(g: Graph, x: Val) -> Val:
    """max(x) - x along the last axis (>= 0)."""
    m = g.reduce("MAX", x, -1)
    d = g.sub(m, x)
    return g.with_interval(d, 0, d.hi)


def div_half_up(g: Graph, n: Val, den: Val) -> Val:
    """round_half_up(n / den) for n >= 0, den >= 1 (INTDIV truncates: floor here)."""
    q = g.intdiv(n, den)
    r = g.sub(n, g.mul(q, den, proven=(0, n.hi)))  # q·den <= n
    r = g.with_interval(r, 0, max(0, den.hi - 1))
    up = g.b2i(g.ge(r, g.sub(den, r)))
    return g.add(q, up)


def refq(g: Graph, ins: Sequence[Operand], p: RefqSoftmaxParams, out: IntFormat) -> Value:
    x = as_i32(g, ins[0])
    L = p.table_bits
    s = p.log2e_shift - L
    m = p.log2e_multiplier
    cap = (_K_MAX + 1) * (1 << L) - 1
    table = _exp_table(p.table)
    if table is None:
        raise ExportError("softmax.refq: exp table without a constant last row")
    if table[0] < 1:
        raise ExportError("softmax.refq: T[0] = 0 (the row sum could be 0)")
    d = row_max_diff(g, x)

    def u_of(v: int) -> int:
        return ((v * m + (1 << (s - 1))) >> s) if s else v * m

    dmax = d.hi
    lo, hi = 0, dmax
    while lo < hi:  # the smallest d with u(d) >= cap (u is non-decreasing in d)
        mid = (lo + hi) // 2
        if u_of(mid) >= cap:
            hi = mid
        else:
            lo = mid + 1
    if lo < dmax:
        d = g.minimum(d, g.scalar(lo, d.rank))
    mc = g.scalar(m, d.rank)
    u = g.mul(d, mc, s)
    idx = g.minimum(u, g.scalar(cap, u.rank))
    e = g.lookup(np.asarray(table), idx)
    total = g.reduce("SUM", e, -1)
    total = g.with_interval(total, max(total.lo, int(table[0])), total.hi)
    scale = (1 << p.out_bits) - 1
    n = g.mul(e, g.scalar(scale, e.rank))
    return div_half_up(g, n, total)





def refq_checked(g: Graph, v: Val, lo: int, hi: int, why: str) -> Val:
    """``v`` (computed with wrapping ops) narrowed to [lo, hi], a range refq itself checks
    (so every input refq accepts keeps the TOSA value exact); recorded as an assumption."""
    if v.lo < lo or v.hi > hi:
        g.assumptions.append(why)
    return g.with_interval(v, lo, hi)


def shift_exp(g: Graph, d: Val, x0: int, n: int, deploy: bool, op: str) -> Val:
    """I-ViT shift-exp of d <= 0 (refq.ops.softmax_shift.shift_exp), int32."""
    u = g.sub(d, g.ars(d, 4), proven=(d.lo, 0))  # d - ⌊d/16⌋ lies in [d, 0]
    t = g.add(u, g.ars(d, 1), within=(-(2**31), 0, f"{op}: x·log2e within int32 "
                                      "(refq-checked)"))
    t = g.maximum(t, g.scalar(n * x0, t.rank))
    q = intops.floor_div_neg(g, t, x0)
    q = g.with_interval(q, 0, n)
    r = g.sub(t, g.mul(q, g.scalar(x0, q.rank), proven=(n * x0, 0)), proven=(x0 + 1, 0))
    sh = g.sub(g.scalar(n, q.rank), q)
    if deploy:
        base = g.sub(g.ars(r, 1), g.scalar(x0, r.rank))
        e = g.shl(base, sh, wrap=True)
    else:
        base = g.sub(r, g.scalar(2 * x0, r.rank))  # in (-x0, -2x0]
        up = g.shl(base, g.maximum(g.addc(sh, -1), g.scalar(0, sh.rank)), wrap=True)
        e = g.select(g.ge(sh, g.scalar(1, sh.rank)), up, g.ars(base, 1))
    bound = max(base.hi << n, 0)
    return refq_checked(g, e, 0, min(bound, 2**31 - 1), f"{op}: exp within int32 "
                        "(refq-checked)")


def row_diff(g: Graph, x: Val, op: str) -> Val:
    """x - max(x) along the last axis (<= 0); refq checks it within int32."""
    d = g.sub(x, g.reduce("MAX", x, -1), proven=(-(x.hi - x.lo), 0),
              within=(-(2**31), 0, f"{op}: x - max within int32 (refq-checked)"))
    return d


def _normalise(g: Graph, e: Val, out_bits: int) -> Val:
    """⌊e·⌊(2^31-1)/min(Σe, 2^31-1)⌋ / 2^(32-b)⌋ (I-ViT's clamp_max on the sum)."""
    total = wide.saturate_i32(g, intops.row_sum_wide(g, e), 0, 2**31 - 1)
    total = g.maximum(total, g.scalar(1, total.rank))
    factor = g.intdiv(g.scalar(2**31 - 1, total.rank), total)
    # e·factor <= (2^31-1)·e/min(Σ, 2^31-1) <= 2^31-1: e <= Σ, or factor = 1 when Σ saturates
    prod = g.mul(e, factor, proven=(0, 2**31 - 1))
    return g.ars(prod, 32 - out_bits)


def shiftmax(g: Graph, ins: Sequence[Operand], p: ShiftmaxParams, out: IntFormat,
             deploy: bool = False) -> Value:
    op = "softmax.shiftmax" + ("_deploy" if deploy else "")
    x = as_i32(g, ins[0])
    d = row_diff(g, x, op)
    e = shift_exp(g, d, p.x0_int, p.n, deploy, op)
    y = _normalise(g, e, p.out_bits)
    return g.with_interval(y, 0, (1 << (p.out_bits - 1)) - 1)


def shiftmax_deploy(g: Graph, ins: Sequence[Operand], p: ShiftmaxParams,
                    out: IntFormat) -> Value:
    """``softmax.shiftmax_deploy``: :func:`shiftmax` with the deployment shift-exp."""
    return shiftmax(g, ins, p, out, deploy=True)


def i_exp(g: Graph, x: Val, p: IExpParams, op: str) -> Wide:
    """I-BERT i-exp of x - max(x) (refq.ops.softmax_ibert.i_exp) as a 64-bit value."""
    d = g.maximum(row_diff(g, x, op), g.scalar(p.n * p.x0_int, x.rank))
    q = g.with_interval(intops.floor_div_neg(g, d, p.x0_int), 0, p.n)
    r = g.sub(d, g.mul(q, g.scalar(p.x0_int, q.rank), proven=(p.n * p.x0_int, 0)),
              proven=(p.x0_int + 1, 0))
    rb = g.addc(r, p.b_int)
    c = g.scalar(p.c_int, r.rank) if p.c_int < 2**31 else None
    if c is None:
        raise ExportError(f"{op}: c_int = {p.c_int} beyond int32")
    poly = g.add(g.mul(rb, r), c)
    lim = (1 << (p.acc_bits - 1)) - 1
    poly = g.maximum(poly, g.scalar(0, poly.rank))
    sh = g.sub(g.scalar(p.n, q.rank), q)  # 0..n
    if p.n > 31:
        raise ExportError(f"{op}: n = {p.n} > 31")
    hi = g.ars(g.ars(poly, 1), g.sub(g.scalar(31, sh.rank), sh))  # poly·2^sh >> 32
    lo = g.shl(poly, sh, wrap=True)
    vhi = min(poly.hi << p.n, lim)
    if poly.hi << p.n > lim:
        g.assumptions.append(f"{op}: exp within int{p.acc_bits} (refq-checked)")
    return Wide(g.with_interval(hi, 0, vhi >> 32), lo, 0, vhi)


def ibert(g: Graph, ins: Sequence[Operand], p: IBertSoftmaxParams, out: IntFormat) -> Value:
    op = "softmax.ibert"
    x = as_i32(g, ins[0])
    e = i_exp(g, x, p, op)
    e16 = dyadic(g, e, [p.exp_multiplier], [p.exp_shift], "half_even", 0, IntFormat(16, True))
    e16 = g.with_interval(e16, 0, 2**15 - 1)  # exp >= 0
    e0 = _ibert_e16_at_zero(p)
    total = g.reduce("SUM", e16, -1)
    if e0 < 3:
        raise ExportError(f"{op}: exp16 of the row maximum is {e0} (< 3): 2^32/Σ needs "
                          "more than int32")
    total = g.with_interval(total, e0, total.hi)  # the row maximum contributes e0
    factor = intops.two32_over(g, total)
    prod = wide.mul64(g, e16, factor)
    prod = Wide(prod.hi, prod.lo, 0, 1 << 32)  # e16 <= Σ, so e16·⌊2^32/Σ⌋ <= 2^32
    y = wide.floor_shift(g, prod, 32 - p.out_bits, 0, min(prod.vhi >> (32 - p.out_bits),
                                                           2**31 - 1))
    return g.minimum(y, g.scalar((1 << p.out_bits) - 1, y.rank))


def _ibert_e16_at_zero(p: IBertSoftmaxParams) -> int:
    """exp16 of d = 0: round_half_even(c_int·2^n·m / 2^c) saturated to int16."""
    e = max(p.c_int, 0) << p.n
    v = wide.round_int(e * p.exp_multiplier, p.exp_shift, "half_even")
    return min(max(v, -(2**15)), 2**15 - 1)



__all__ = ["div_half_up", "i_exp", "ibert", "refq", "row_max_diff", "shift_exp",
           "shiftmax", "shiftmax_deploy"]
