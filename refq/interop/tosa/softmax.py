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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from refq.interop.tosa.graph import ExportError, Graph, Val
from refq.interop.tosa.values import Operand, Value, as_i32
from refq.intmath import IntFormat
from refq.ops.softmax_refq import _K_MAX, RefqSoftmaxParams, _exp_table


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


TRANSLATIONS: dict[str, Callable[..., Any]] = {"softmax.refq": refq}

__all__ = ["TRANSLATIONS", "div_half_up", "refq", "row_max_diff"]
