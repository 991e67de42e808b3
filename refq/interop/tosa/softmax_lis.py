"""``softmax.lis`` (FQ-ViT log-int softmax, refq.ops.softmax_ibert.softmax_lis) as TOSA int32
operators on 64-bit values (refq.interop.tosa.wide):

    e = i-exp(x - max)                   64-bit (the I-BERT polynomial shifted by n - q)
    Σ = Σ e                              64-bit row sum (16-bit halves of the low words)
    q, r = Σ ÷ e                         63-step restoring long division in one WHILE_LOOP
                                         (remainder doubled plus the next bit of Σ, one
                                         64-bit compare and subtract per step)
    ratio = q + [2r > e or (2r = e and q odd)]      round half even
    k = bitlen(ratio) - 1  (CLZ of the high or low word)
    k' = k + [k > 0 and bit k-1 of ratio]            FQ-ViT's log_round: ratio >= 1.5·2^k
    code = 2^bits where e = 0 or k' >= 2^bits, else k'
"""

from __future__ import annotations

from collections.abc import Sequence

from refq.interop.tosa import wide
from refq.interop.tosa.graph import Graph, Val, broadcast
from refq.interop.tosa.softmax import i_exp
from refq.interop.tosa.values import Operand, Value, as_i32
from refq.interop.tosa.wide import Wide
from refq.intmath import IntFormat
from refq.ops.softmax_ibert import LisParams

_M31 = (1 << 31) - 1
_TOP = (1 << 63) - 1


def row_sum(g: Graph, e: Wide, acc_bits: int, op: str) -> Wide:
    """Σ e along the last axis for non-negative 64-bit e (refq checks Σ within
    int<acc_bits>, which keeps the sum of the high words within int32)."""
    n = e.lo.shape[-1]
    lim = (1 << (acc_bits - 1)) - 1
    s_hi = g.reduce("SUM", g.with_interval(e.hi, 0, e.hi.hi), -1) if n * e.hi.hi < 2**31 else \
        None
    if s_hi is None:
        g.assumptions.append(f"{op}: Σexp within int{acc_bits} (refq-checked)")
        hi_words = g.with_interval(e.hi, 0, min(e.hi.hi, lim >> 32))
        s_hi = g.emit("REDUCE_SUM", [hi_words.name], (*hi_words.shape[:-1], 1), "int32", 0,
                      min(lim >> 32, _M31), g._attr("ReduceSum", hi_words.rank - 1))
    lo16 = g.reduce("SUM", g.bandc(e.lo, 0xFFFF), -1)
    hi16 = g.reduce("SUM", g.lsr(e.lo, 16), -1)
    low = wide.add(g, wide.from_shifted(g, hi16, 16), wide.from_i32(g, lo16))
    # Σ <= lim and the low part is >= 0: the high part is at most lim
    high = Wide(s_hi, g.scalar(0, s_hi.rank), 0, max(0, min(s_hi.hi << 32, lim - low.vhi)))
    total = wide.add(g, high, low)
    return Wide(total.hi, total.lo, 0, min(total.vhi, lim))


def long_divide(g: Graph, num: Wide, den: Wide) -> tuple[Wide, Wide]:
    """(⌊num/den⌋, num mod den) for 0 <= num < 2^63, 1 <= den <= 2^62 (one WHILE_LOOP of 63
    restoring steps; module docstring)."""
    def body(st: list[Val]) -> list[Val]:
        th, tl, rh, rl, qh, ql, eh, el = st
        bit = g.bandc(g.ars(th, 30), 1)  # bit 62 of the (shifted) dividend
        t2h = g.bandc(g.bor(g.shl(th, 1, wrap=True), g.lsr(tl, 31)), _M31)
        t2l = g.shl(tl, 1, wrap=True)
        rem = wide.shl1(g, Wide(rh, rl, 0, (1 << 62) - 1))
        rem = Wide(rem.hi, g.bor(rem.lo, bit), 0, (1 << 63) - 1)
        d = Wide(eh, el, 1, 1 << 62)
        take = wide.ge(g, rem, d)
        less = wide.sub(g, rem, d, 0, (1 << 62) - 1)
        new_r = wide.select(g, take, less, Wide(rem.hi, rem.lo, 0, (1 << 62) - 1))
        q2 = wide.shl1(g, Wide(qh, ql, 0, (1 << 62) - 1))
        new_ql = g.bor(q2.lo, g.b2i(take))
        return [g.with_interval(t2h, 0, _M31), t2l, g.with_interval(new_r.hi, 0, 1 << 30),
                new_r.lo, g.with_interval(q2.hi, 0, _M31), new_ql, eh, el]

    r = num.lo.rank
    zero = g.scalar(0, r)

    shape = broadcast(broadcast(num.hi.shape, num.lo.shape, "divide"),
                      broadcast(den.hi.shape, den.lo.shape, "divide"), "divide")

    def full(v: Val) -> Val:
        if v.shape == shape:
            return v
        return g.tile(v, [a // b for a, b in zip(shape, v.shape, strict=True)])

    init = [g.widen(full(num.hi), 0, _M31), g.widen(full(num.lo), -(2**31), _M31),
            g.widen(full(zero), 0, 1 << 30), g.widen(full(zero), -(2**31), _M31),
            g.widen(full(zero), 0, _M31), g.widen(full(zero), -(2**31), _M31),
            g.widen(full(den.hi), 0, 1 << 30), g.widen(full(den.lo), -(2**31), _M31)]
    out = g.loop(63, init, body)
    return Wide(out[4], out[5], 0, _TOP), Wide(out[2], out[3], 0, (1 << 62) - 1)


def lis(g: Graph, ins: Sequence[Operand], p: LisParams, out: IntFormat) -> Value:
    op = "softmax.lis"
    x = as_i32(g, ins[0])
    e = i_exp(g, x, p, op)
    total = row_sum(g, e, p.acc_bits, op)
    r = e.lo.rank
    zero_i = g.scalar(0, r)
    is_zero = g.land(g.eq(e.hi, zero_i), g.eq(e.lo, zero_i))
    e1 = wide.select(g, is_zero, wide.const(g, 1, r), e)
    e1 = Wide(e1.hi, e1.lo, 1, max(1, e.vhi))
    q, rem = long_divide(g, total, e1)
    two_rem = wide.shl1(g, rem)
    gt = g.lnot(wide.ge(g, e1, two_rem))
    tie = g.land(wide.ge(g, e1, two_rem), wide.ge(g, two_rem, e1))
    odd = g.eq(g.bandc(q.lo, 1), g.scalar(1, r))
    up = g.b2i(g.lor(gt, g.land(tie, odd)))
    # q + up <= Σ <= 2^63 - 1 (up = 1 only where the remainder is positive: q < Σ)
    ratio = wide.add(g, Wide(q.hi, q.lo, 0, _TOP - 1), wide.from_i32(g, up))
    ratio = Wide(ratio.hi, ratio.lo, 1, _TOP)
    hi_pos = g.gt(ratio.hi, zero_i)
    bitlen = g.select(hi_pos, g.sub(g.scalar(64, r), g.clz(ratio.hi)),
                      g.sub(g.scalar(32, r), g.clz(ratio.lo)))
    k = g.with_interval(g.addc(bitlen, -1), 0, 62)
    pos = g.maximum(g.addc(k, -1), zero_i)  # bit k - 1 (k >= 1)
    from_hi = g.bandc(g.ars(ratio.hi, g.maximum(g.addc(pos, -32), zero_i)), 1)
    from_lo = g.bandc(g.lsr(ratio.lo, g.minimum(pos, g.scalar(31, r))), 1)
    bit = g.select(g.ge(pos, g.scalar(32, r)), from_hi, from_lo)
    bump = g.land(g.ge(k, g.scalar(1, r)), g.eq(bit, g.scalar(1, r)))
    kp = g.add(k, g.b2i(bump))
    top = 1 << p.bits
    cap = g.lor(is_zero, g.ge(kp, g.scalar(top, r)))
    return g.select(cap, g.scalar(top, r), kp)



__all__ = ["lis", "long_divide", "row_sum"]
