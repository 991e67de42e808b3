"""Small exact integer building blocks shared by the kernel translations (int32 TOSA ops,
intervals proven by refq.interop.tosa.graph; 64-bit results through refq.interop.tosa.wide).
"""

from __future__ import annotations

from refq.interop.tosa import wide
from refq.interop.tosa.graph import ExportError, Graph, Val
from refq.interop.tosa.wide import Wide


def floor_div_neg(g: Graph, d: Val, x0: int) -> Val:
    """⌊d / x0⌋ for d <= 0 and a constant x0 < 0 (the quotient is >= 0, so INTDIV's
    truncation is the floor)."""
    if x0 >= 0 or d.hi > 0:
        raise ExportError("floor_div_neg: needs d <= 0 and x0 < 0")
    return g.intdiv(d, g.scalar(x0, d.rank))


def round_div_const(g: Graph, n: Val, d: int, rounding: str) -> Val:
    """refq's ``rounding`` (floor or half_even) of n / d for a constant d > 0."""
    if d <= 0:
        raise ExportError("round_div_const: divisor must be positive")
    dc = g.scalar(d, n.rank)
    q = g.intdiv(n, dc)  # toward zero
    r = g.sub(n, g.mul(q, dc, proven=(min(n.lo, 0), max(n.hi, 0))),  # |q·d| <= |n|
              proven=(-(d - 1), d - 1))
    neg = g.gt(g.scalar(0, r.rank), r)  # floor: step down where the remainder is negative
    q = g.sub(q, g.b2i(neg))
    r = g.select(neg, g.add(r, dc, proven=(0, d - 1)), r)
    r = g.with_interval(r, 0, d - 1)
    if rounding == "floor":
        return q
    if rounding != "half_even":
        raise ExportError(f"round_div_const: rounding {rounding} not translated")
    other = g.sub(dc, r)
    odd = g.eq(g.bandc(q, 1), g.scalar(1, q.rank))
    up = g.lor(g.gt(r, other), g.land(g.eq(r, other), odd))
    return g.add(q, g.b2i(up))


def sign(g: Graph, x: Val) -> Val:
    """-1, 0 or 1."""
    zero = g.scalar(0, x.rank)
    pos = g.b2i(g.gt(x, zero))
    neg = g.b2i(g.gt(zero, x))
    return g.sub(pos, neg)


def row_sum_wide(g: Graph, e: Val) -> Wide:
    """Σ e along the last axis, exactly, for non-negative int32 e (the sums of the 16-bit
    halves stay within int32 for rows of up to 2^15 elements)."""
    if e.lo < 0:
        raise ExportError("row_sum_wide: negative terms")
    n = e.shape[-1]
    if n >= 1 << 15:
        raise ExportError(f"row_sum_wide: rows of {n} elements")
    lo = g.reduce("SUM", g.bandc(e, 0xFFFF), -1)
    hi = g.reduce("SUM", g.ars(e, 16), -1)
    w = wide.add(g, wide.from_shifted(g, hi, 16), wide.from_i32(g, lo))
    return Wide(w.hi, w.lo, 0, n * e.hi)


def saturating_add(g: Graph, a: Val, b: Val, top: int = (1 << 31) - 1) -> Val:
    """min(a + b, top) for non-negative a, b <= top (no intermediate above top)."""
    room = g.sub(g.scalar(top, a.rank), b)
    over = g.gt(a, room)
    s = g.add(g.minimum(a, room), b, proven=(0, top))  # min(a, top - b) + b <= top
    return g.select(over, g.scalar(top, a.rank), s)


def two32_over(g: Graph, t: Val) -> Val:
    """⌊2^32 / t⌋ for 3 <= t < 2^30 (int32): 2·⌊2^31/t⌋ + [2·(2^31 mod t) >= t]."""
    if t.lo < 3 or t.hi >= 1 << 30:
        raise ExportError(f"2^32 / t: t in [{t.lo}, {t.hi}] (needs 3..2^30-1)")
    top = g.scalar((1 << 31) - 1, t.rank)
    a = g.intdiv(top, t)
    rem = g.sub(top, g.mul(a, t, proven=(0, (1 << 31) - 1)))
    rem = g.with_interval(rem, 0, t.hi - 1)
    r1 = g.addc(rem, 1)
    wrap = g.eq(r1, t)
    q31 = g.add(a, g.b2i(wrap))
    r31 = g.select(wrap, g.scalar(0, t.rank), r1)
    up = g.b2i(g.ge(g.add(r31, r31, proven=(0, 2 * t.hi)), t))
    return g.add(g.add(q31, q31, proven=(0, (1 << 32) // 3)), up, proven=(0, (1 << 32) // 3))


__all__ = ["floor_div_neg", "round_div_const", "row_sum_wide", "saturating_add", "sign",
           "two32_over"]
