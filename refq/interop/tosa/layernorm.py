"""refq's integer LayerNorm statistics as TOSA sequences (int32 operators only).

``layernorm.refq`` (refq.ops.layernorm) needs 63-bit intermediates — Σ y² and isqrt(v·4^k)
— which TOSA's int32 operators reach exactly as follows (per row; the statistics tensors
are (…, 1), so these loops cost operators, not data):

    a = (x - zp) << shift_c;  y = C·a - REDUCE_SUM(a)            int32 (proven)
    v = Σ y²:  |y| in four 8-bit digits, the ten digit-product row sums (REDUCE_SUM, each
               < 2^31), carried in base 2^8 and packed in two words v = vh·2^31 + vl
    bitlen(v) from CLZ of vh or vl;  k = max(0, (62 - bitlen) >> 1)
    N = v·4^k in two words (variable LOGICAL shifts, SELECT on 2k >= 31)
    s = isqrt(N): 31 digit-by-digit steps on bit pairs of N, keeping q = r - s (the
        remainder minus the root, within ±s) so nothing leaves int32:
            β = [q > 0 or (q = 0 and pair > 0)];  q' = 2(2q ∓ s) + pair - 2β;  s' = 2s + β
    Y = y << k  (|Y| <= s)
    out = round_half_even(Y·2^F / max(s, 1)): F+1 restoring-division steps on |Y| (the
          remainder r < s doubled as r + (r - s) or r + r), then the half-even step from
          r against s - r, then the sign; + bias_c.

Limit: the packing needs v < 2^62 (refq accepts v < 2^63). The export proves it from the
input interval where it can (C·max|y|² < 2^62) and otherwise records the assumption.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from refq.interop.tosa import intops, wide
from refq.interop.tosa.graph import ExportError, Graph, Val, broadcast
from refq.interop.tosa.values import Operand, Value, as_i32
from refq.interop.tosa.wide import Wide
from refq.intmath import IntFormat
from refq.ops.layernorm import LayerNormParams

_M31 = (1 << 31) - 1


def aligned(g: Graph, x: Val, p: LayerNormParams) -> Val:
    """(x - zp) << channel_shift, int32 (proven from the format)."""
    a = g.addc(x, -p.zero_point) if p.zero_point else x
    sh = list(p.channel_shift)
    if max(sh) == 0:
        return a
    if len(sh) == 1:
        return g.shl(a, sh[0])
    arr = np.asarray(sh, dtype=np.int64).reshape((1,) * (a.rank - 1) + (len(sh),))
    return g.shl(a, g.const(arr, "int32"))


def centered(g: Graph, a: Val) -> Val:
    """y = C·a - Σa (int32, proven: |y| <= (C - 1)(hi - lo))."""
    c = a.shape[-1]
    total = g.reduce("SUM", a, -1)
    y = g.sub(g.mulc(a, c), total)
    bound = (c - 1) * (a.hi - a.lo)
    return g.with_interval(y, max(y.lo, -bound), min(y.hi, bound))


def sum_squares(g: Graph, y: Val) -> tuple[Val, Val, int]:
    """(vh, vl, vmax): Σ y² over the last axis as vh·2^31 + vl, vl < 2^31, and a bound."""
    c = y.shape[-1]
    ymax = max(-y.lo, y.hi)
    vmax = c * ymax * ymax
    if vmax >= 1 << 62:
        g.assumptions.append(f"layernorm: Σy² < 2^62 per row (refq allows < 2^63; C={c}, "
                             f"|y| <= {ymax})")
        vmax = (1 << 62) - 1
    u = g.abs(y)
    nd = max(1, (ymax.bit_length() + 7) // 8)
    digits = [g.bandc(g.ars(u, 8 * i), 255) if i < 3 else g.ars(u, 24) for i in range(nd)]
    digits = [g.with_interval(d, 0, min(255, ymax >> (8 * i))) for i, d in enumerate(digits)]
    cols: list[Val | None] = [None] * (2 * nd - 1)
    for i in range(nd):
        for j in range(i, nd):
            s = g.reduce("SUM", g.mul(digits[i], digits[j]), -1)
            if i != j:
                s = g.add(s, s)
            prev = cols[i + j]
            cols[i + j] = s if prev is None else g.add(prev, s)
    carry: Val | None = None
    out: list[Val] = []
    for col in cols:
        assert col is not None
        t = col if carry is None else g.add(col, carry)
        out.append(g.bandc(t, 255))
        carry = g.ars(t, 8)
    assert carry is not None
    out.append(carry)  # everything from bit 8·len(cols) up
    vl: Val | None = None
    vh: Val | None = None
    for k, dgt in enumerate(out):
        pos = 8 * k
        if pos < 31:
            low = dgt if dgt.hi < (1 << (31 - pos)) else g.bandc(dgt, (1 << (31 - pos)) - 1)
            term = g.shl(low, pos) if pos else low
            vl = term if vl is None else g.bor(vl, term)
            if dgt.hi < (1 << (31 - pos)):
                continue
            high = g.ars(dgt, 31 - pos)
        else:
            high = g.shl(g.with_interval(dgt, 0, min(dgt.hi, (vmax >> pos))), pos - 31)
        high = g.with_interval(high, 0, min(high.hi, vmax >> 31))
        vh = high if vh is None else g.add(vh, high, proven=(0, vmax >> 31))
    assert vl is not None
    vh = vh if vh is not None else g.scalar(0, vl.rank)
    return (g.with_interval(vh, 0, min(vh.hi, vmax >> 31)),
            g.with_interval(vl, 0, min(vl.hi, _M31)), vmax)


def bit_length(g: Graph, vh: Val, vl: Val) -> Val:
    """bitlen(max(v, 1)) for v = vh·2^31 + vl."""
    zero = g.scalar(0, vh.rank)
    bl_hi = g.sub(g.scalar(63, vh.rank), g.clz(vh))
    bl_lo = g.sub(g.scalar(32, vl.rank), g.clz(vl))
    bl = g.select(g.gt(vh, zero), bl_hi, bl_lo)
    return g.maximum(bl, g.scalar(1, bl.rank))


def shift_pair(g: Graph, vh: Val, vl: Val, t: Val) -> tuple[Val, Val]:
    """(Nh, Nl) of N = v·2^t, t in 0..60, given N < 2^62 (base 2^31 words)."""
    r = vh.rank
    t_lo = g.minimum(t, g.scalar(30, r))  # used where t < 31
    nh_small = g.bor(g.shl(vh, t_lo, wrap=True),
                     g.ars(vl, g.sub(g.scalar(31, r), t_lo)))
    nl_small = g.bandc(g.shl(vl, t_lo, wrap=True), _M31)
    t_hi = g.maximum(g.sub(t, g.scalar(31, r)), g.scalar(0, r))
    nh_big = g.shl(vl, g.minimum(t_hi, g.scalar(31, r)), wrap=True)
    big = g.ge(t, g.scalar(31, r))
    nh = g.select(big, nh_big, nh_small)
    nl = g.select(big, g.scalar(0, r), nl_small)
    return g.with_interval(nh, 0, _M31), g.with_interval(nl, 0, _M31)


def isqrt_pair(g: Graph, nh: Val, nl: Val) -> Val:
    """⌊√N⌋ for N = nh·2^31 + nl < 2^62: one WHILE_LOOP of 31 digit-by-digit steps, each
    taking the top bit pair of N (the words shift left by 2) — module docstring. At the
    start of step j, s < 2^j and |q| <= s, which bounds every sum below."""
    r = nh.rank
    top = (1 << 30) - 1

    def step(st: list[Val]) -> list[Val]:
        h, lw, s, q = st
        zero = g.scalar(0, r)
        d = g.ars(h, 29)  # bits 61, 60 of N
        h2 = g.bor(g.bandc(g.shl(h, 2, wrap=True), _M31), g.ars(lw, 29))
        l2 = g.bandc(g.shl(lw, 2, wrap=True), _M31)
        beta_b = g.gt(g.add(q, g.minimum(d, g.scalar(1, r)), proven=(-top, top + 1)), zero)
        beta = g.b2i(beta_b)
        signed_s = g.select(beta_b, g.sub(zero, s, proven=(-top, 0)), s)
        q2 = g.add(q, q, proven=(-2 * top, 2 * top))
        t = g.add(q2, signed_s, proven=(-top, top))  # |2q ∓ s| <= s
        q3 = g.add(g.add(t, t, proven=(-2 * top, 2 * top)), g.sub(d, g.add(beta, beta)),
                   proven=(-_M31, _M31))
        s2 = g.add(g.add(s, s, proven=(0, 2 * top)), beta, proven=(0, _M31))
        return [h2, l2, s2, q3]

    shape = broadcast(nh.shape, nl.shape, "isqrt")

    def full(v: Val) -> Val:
        return v if v.shape == shape else g.tile(v, [s // d for s, d in zip(shape, v.shape,
                                                                             strict=True)])

    zero = g.scalar(0, r)
    init = [g.widen(full(nh), 0, _M31), g.widen(full(nl), 0, _M31),
            g.widen(full(zero), 0, _M31), g.widen(full(zero), -_M31, _M31)]
    return g.loop(31, init, step)[2]


def divide_round(g: Graph, y: Val, s: Val, frac: int) -> Val:
    """round_half_even(Y·2^F / s) for |Y| <= s, s >= 1: F steps of restoring division in one
    WHILE_LOOP (the remainder r < s doubles as r + (r - s) or r + r, never leaving [0, s)),
    then the half-even step from r against s - r, then the sign."""
    r_ = y.rank
    zero = g.scalar(0, r_)
    a = g.abs(y)
    a = g.with_interval(a, 0, min(a.hi, s.hi))
    q0 = g.b2i(g.ge(a, s))
    rem = g.with_interval(g.sub(a, g.mul(q0, s)), 0, s.hi - 1)

    def step(st: list[Val]) -> list[Val]:
        rem_, quo, ss = st
        bit_b = g.ge(rem_, g.sub(ss, rem_))
        delta = g.select(bit_b, g.sub(rem_, ss), rem_)
        rem2 = g.add(rem_, delta, proven=(0, ss.hi - 1))  # 2r - s or 2r, both in [0, s)
        quo2 = g.add(g.add(quo, quo, proven=(0, 1 << frac)), g.b2i(bit_b),
                     proven=(0, 1 << frac))
        return [rem2, quo2, ss]

    init = [g.widen(rem, 0, s.hi - 1), g.widen(q0, 0, 1 << frac), s]
    rem, quo, _ = g.loop(frac, init, step)
    other = g.sub(s, rem)
    odd = g.eq(g.bandc(quo, 1), g.scalar(1, r_))
    up = g.lor(g.gt(rem, other), g.land(g.eq(rem, other), odd))
    mag = g.with_interval(g.add(quo, g.b2i(up)), 0, 1 << frac)
    return g.select(g.gt(zero, y), g.sub(zero, mag), mag)


def refq(g: Graph, ins: Sequence[Operand], p: LayerNormParams, out: IntFormat) -> Value:
    x = as_i32(g, ins[0])
    if x.shape[-1] < 1:
        raise ExportError("layernorm.refq: empty channel axis")
    a = aligned(g, x, p)
    y = centered(g, a)
    vh, vl, _ = sum_squares(g, y)
    bl = bit_length(g, vh, vl)
    k = g.maximum(g.ars(g.sub(g.scalar(62, bl.rank), bl), 1), g.scalar(0, bl.rank))
    k = g.with_interval(k, 0, 30)
    nh, nl = shift_pair(g, vh, vl, g.add(k, k))
    s = g.maximum(isqrt_pair(g, nh, nl), g.scalar(1, nh.rank))
    yk = g.shl(y, k, wrap=True)
    yk = g.with_interval(yk, -_M31, _M31)  # |y|·2^k <= √(v·4^k) < 2^31
    res = divide_round(g, yk, s, p.frac_bits)
    bias = list(p.bias)
    if any(bias):
        arr = np.asarray(bias, dtype=np.int64)
        bc = g.const(arr.reshape((1,) * (res.rank - 1) + (arr.size,)), "int32")
        res = g.add(res, bc)
    return res




def _mean_centered(g: Graph, a: Val) -> Val:
    """a - round_half_even(Σa / C) (refq.ops.layernorm._mean_center)."""
    c = a.shape[-1]
    mean = intops.round_div_const(g, g.reduce("SUM", a, -1), c, "half_even")
    return g.sub(a, mean, proven=(a.lo - a.hi, a.hi - a.lo))


def _finish_wide(g: Graph, w: Wide, p: LayerNormParams) -> Value:
    bias = list(p.bias)
    if any(bias):
        arr = np.asarray(bias, dtype=np.int64)
        bc = g.const(arr.reshape((1,) * (w.lo.rank - 1) + (arr.size,)), "int32")
        w = wide.add(g, w, wide.from_i32(g, bc))
    return w


def _reciprocal_2_31(g: Graph, std: Val) -> Val:
    """⌊2^31 / std⌋ for 2 <= std < 2^31: ⌊(2^31 - 1)/std⌋ + [std is a power of two]."""
    q = g.intdiv(g.scalar(2**31 - 1, std.rank), std)
    pow2 = g.eq(g.band(std, g.addc(std, -1)), g.scalar(0, std.rank))
    return g.add(q, g.b2i(pow2), proven=(0, 2**30))


def ibert(g: Graph, ins: Sequence[Operand], p: LayerNormParams, out: IntFormat) -> Value:
    """``layernorm.ibert``: mean (half-even), y >> var_shift squared and summed (two words),
    std = isqrt(v)·2^var_shift, factor = ⌊2^31/std⌋ (std = 1: 2^31, kept in 64 bits),
    out = ⌊y·factor / 2⌋ + bias as a 64-bit value."""
    x = as_i32(g, ins[0])
    y = _mean_centered(g, aligned(g, x, p))
    ys = g.ars(y, p.var_shift) if p.var_shift else y
    vh, vl, _ = sum_squares(g, ys)
    if (vh.hi << 31) + vl.hi >= 1 << 32:
        g.assumptions.append("layernorm.ibert: Σ(y >> var_shift)² within uint32 "
                             "(refq-checked)")
    root = isqrt_pair(g, vh, vl)
    root = g.with_interval(root, 0, (1 << 16) - 1)  # v < 2^32
    if (root.hi << p.var_shift) >= 1 << 31:
        raise ExportError(f"layernorm.ibert: isqrt(v)·2^{p.var_shift} may reach 2^31")
    std = g.maximum(g.shl(root, p.var_shift) if p.var_shift else root,
                    g.scalar(1, root.rank))
    is_one = g.eq(std, g.scalar(1, std.rank))
    factor = _reciprocal_2_31(g, g.maximum(std, g.scalar(2, std.rank)))
    prod = wide.select(g, is_one, wide.from_shifted(g, y, 31), wide.mul64(g, y, factor))
    return _finish_wide(g, wide.shift_right(g, prod, 1), p)


def divide_pair(g: Graph, vh: Val, vl: Val, k: Val, kmax: int) -> Val:
    """⌊v/k⌋ for v = vh·2^31 + vl (0 <= vl < 2^31), 1 <= k <= kmax <= 2^30 and vh < k (the
    caller's proof; the quotient is then < 2^31): 31 steps of restoring division in one
    WHILE_LOOP, each bringing down the next bit of vl (bit 30 first): t = 2r + bit, then
    r = t - k, q = 2q + 1 where t >= k, else r = t, q = 2q. r < k keeps t < 2^31."""
    if kmax > 1 << 30:
        raise ExportError(f"divide_pair: divisor bound {kmax} above 2^30")
    r_ = vl.rank
    shape = broadcast(vh.shape, vl.shape, "divide")

    def full(v: Val) -> Val:
        return v if v.shape == shape else g.tile(v, [s // d for s, d in zip(shape, v.shape,
                                                                             strict=True)])

    def step(st: list[Val]) -> list[Val]:
        rem, lw, quo, kk = st
        bit = g.ars(lw, 30)
        lw2 = g.bandc(g.shl(lw, 1, wrap=True), _M31)
        t = g.add(g.add(rem, rem, proven=(0, 2 * kmax - 2)), bit)
        ge = g.ge(t, kk)
        rem2 = g.select(ge, g.sub(t, kk, proven=(0, kmax - 1)), t)
        quo2 = g.add(g.add(quo, quo, proven=(0, _M31 - 1)), g.b2i(ge), proven=(0, _M31))
        return [g.with_interval(rem2, 0, kmax - 1), lw2, quo2, kk]

    init = [g.widen(g.with_interval(full(vh), 0, kmax - 1), 0, kmax - 1),
            g.widen(full(vl), 0, _M31), g.widen(full(g.scalar(0, r_)), 0, _M31),
            full(k)]
    return g.loop(31, init, step)[2]


def ivit(g: Graph, ins: Sequence[Operand], p: LayerNormParams, out: IntFormat) -> Value:
    """``layernorm.ivit``: mean (half-even), v = Σy², I-ViT's 10 Newton steps
    k ← ⌊(k + ⌊v/k⌋)/2⌋ from 2^16, factor = ⌊(2^31-1)/k⌋, out = ⌊y·factor/2⌋ + bias (64-bit).

    v < 2^31 (proven from the input format): every step is INTDIV in int32. Otherwise (v in
    two words vh·2^31 + vl): the first step is (2^16 + (v >> 16)) >> 1 from the words, and
    each later quotient a 31-step restoring division (:func:`divide_pair`). From the first
    step on the iterates stay in [max(⌊√v⌋, 64), K + 1], K the largest first iterate (Newton
    from above with floors never drops below ⌊√v⌋, and v < 2^31·⌊√v⌋ gives vh < k), so
    k + ⌊v/k⌋ <= 2K + 66; exported where that fits int32 (v below about 2^46), refused
    beyond."""
    x = as_i32(g, ins[0])
    y = _mean_centered(g, aligned(g, x, p))
    vh, vl, vmax = sum_squares(g, y)
    if vmax < 1 << 31:
        v = vl
        k = g.tile(g.scalar(1 << 16, v.rank), list(v.shape))
        k = g.with_interval(k, 1 << 16, 1 << 16)
        for _ in range(10):  # from above (2^16 >= √v), the iterates stay in [⌊√v⌋, 2^16]
            k = g.ars(g.add(k, g.intdiv(v, k)), 1)
            k = g.with_interval(k, 1 << 6, 1 << 16)
    else:
        kmax = max(1 << 16, ((1 << 16) + (vmax >> 16)) >> 1) + 1
        if 2 * kmax + 66 >= 1 << 31:
            raise ExportError(f"layernorm.ivit: Σy² may reach 2^{vmax.bit_length() - 1}; the "
                              "Newton iterates (2^16 + Σy²/2^16)/2 would leave int32's "
                              "headroom (exported for Σy² up to about 2^46)")
        v16 = g.add(g.shl(g.with_interval(vh, 0, vmax >> 31), 15), g.ars(vl, 16))
        k = g.ars(g.addc(v16, 1 << 16), 1)
        k = g.with_interval(k, 0, kmax)
        k = g.with_interval(k, 1 << 15, kmax)
        for i in range(9):  # k_(n+1) >= k_n / 2: >= 2^(15-i) >= 64
            q = g.with_interval(divide_pair(g, vh, vl, k, kmax), 0, kmax + 2)
            k = g.ars(g.add(k, q, proven=(0, 2 * kmax + 66)), 1)
            k = g.with_interval(k, 1 << (14 - i), kmax)
    factor = g.intdiv(g.scalar(2**31 - 1, k.rank), k)
    return _finish_wide(g, wide.shift_right(g, wide.mul64(g, y, factor), 1), p)


__all__ = ["aligned", "bit_length", "centered", "divide_pair", "divide_round", "ibert",
           "isqrt_pair", "ivit", "refq", "shift_pair", "sum_squares"]
