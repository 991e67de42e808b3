"""Exact 64-bit integer arithmetic from TOSA's int32 operators.

A :class:`Wide` value is two int32 TOSA tensors, ``hi`` (signed) and ``lo`` (its 32 bits read
unsigned): value = hi·2^32 + (lo mod 2^32), any integer in [-2^63, 2^63). The building block
is the exact 64-bit product of two int32 values from two MULs:

    lo = MUL(x, y, shift 0)          the low 32 bits of x·y (TOSA: "low 32-bits of result")
    hi = MUL(x, y, shift 32) - [lo < 0]
         MUL with shift 32 is ⌊(x·y + 2^31) / 2^32⌋ = ⌊x·y / 2^32⌋ + bit 31 of x·y, and bit 31
         of x·y is the sign bit of ``lo``; |x·y| <= 2^62 keeps the MUL within int32.

From a Wide, :func:`round_shift` returns any of refq's six roundings of value / 2^c (c in
0..63) as an int32: the floor quotient from shifted words, then a 0/1 increment decided by
bit c-1 (the half bit), the bits below it (zero or not) and the signs — the same case analysis
as refq.intmath.round_shift, on bits instead of a remainder. Every step is proven within
int32 by the graph's intervals (refq.interop.tosa.graph).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from refq.interop.tosa.graph import I32, ExportError, Graph, Val, fits

ROUNDINGS = ("half_even", "half_away", "half_up", "floor", "ceil", "trunc")
_U32 = 1 << 32


@dataclass(frozen=True)
class Wide:
    """hi·2^32 + (lo mod 2^32), with a proven value interval [vlo, vhi]."""

    hi: Val
    lo: Val
    vlo: int
    vhi: int

    @property
    def shape(self) -> tuple[int, ...]:
        return self.hi.shape if self.hi.size >= self.lo.size else self.lo.shape


def floor_div(n: int, c: int) -> int:
    return n >> c


def round_int(n: int, c: int, rounding: str) -> int:
    """refq's named rounding of n / 2^c on Python ints (the export's own arithmetic for
    static bounds; independent of refq.intmath)."""
    if c == 0:
        return n
    q, r = n >> c, n & ((1 << c) - 1)
    half = 1 << (c - 1)
    up = {
        "floor": False,
        "ceil": r != 0,
        "trunc": r != 0 and n < 0,
        "half_up": r >= half,
        "half_away": r > half or (r == half and n >= 0),
        "half_even": r > half or (r == half and q % 2 == 1),
    }[rounding]
    return q + int(up)


def from_i32(g: Graph, x: Val) -> Wide:
    x = g.i32(x)
    return Wide(g.ars(x, 31), x, x.lo, x.hi)


def from_shifted(g: Graph, x: Val, k: int) -> Wide:
    """x·2^k for int32 x and 0 <= k <= 31, exactly."""
    x = g.i32(x)
    if k == 0:
        return from_i32(g, x)
    return Wide(g.ars(x, 32 - k) if k < 32 else x, g.shl(x, k, wrap=True), x.lo << k,
                x.hi << k)


def mul64(g: Graph, x: Val, y: Val) -> Wide:
    """The exact product of two int32 tensors (module docstring)."""
    x, y = g.i32(x), g.i32(y)
    corners = [x.lo * y.lo, x.lo * y.hi, x.hi * y.lo, x.hi * y.hi]
    vlo, vhi = min(corners), max(corners)
    lo = g.mul(x, y, 0, wrap=True)
    if fits(vlo, vhi, "int32"):
        return Wide(g.ars(lo, 31), lo, vlo, vhi)
    hi = g.sub(g.mul(x, y, 32), g.b2i(g.gt(g.scalar(0, lo.rank), lo)))
    return Wide(g.with_interval(hi, vlo >> 32, vhi >> 32), lo, vlo, vhi)


def _per_channel(g: Graph, values: Sequence[int], rank: int) -> Val:
    """A constant broadcasting along the last axis (one value, or one per channel)."""
    arr = np.asarray([int(v) for v in values], dtype=np.int64)
    return g.const(arr.reshape((1,) * (rank - 1) + (arr.size,)) if rank else arr, "int32")


def _mask(g: Graph, flags: Sequence[bool], rank: int) -> Val:
    """A bool constant broadcasting along the last axis."""
    arr = np.asarray([bool(f) for f in flags], dtype=np.bool_)
    return g.const(arr.reshape((1,) * (rank - 1) + (arr.size,)) if rank else arr)


def _bit(g: Graph, w: Wide, ks: Sequence[int]) -> Val:
    """Bit k_j (0..62) of the value (per channel), as int32 0/1."""
    r = w.lo.rank
    if all(k < 32 for k in ks):
        sh = ks[0] if len(set(ks)) == 1 else _per_channel(g, ks, r)
        return g.bandc(g.lsr(w.lo, sh), 1)
    if all(k >= 32 for k in ks):
        sh = ks[0] - 32 if len(set(ks)) == 1 else _per_channel(g, [k - 32 for k in ks], r)
        return g.bandc(g.ars(w.hi, sh), 1)
    low = g.bandc(g.lsr(w.lo, _per_channel(g, [min(k, 31) for k in ks], r)), 1)
    high = g.bandc(g.ars(w.hi, _per_channel(g, [max(k - 32, 0) for k in ks], r)), 1)
    return g.select(_mask(g, [k >= 32 for k in ks], r), high, low)


def _low_zero(g: Graph, w: Wide, ks: Sequence[int]) -> Val | None:
    """Bool: bits 0..k_j-1 of the value are all zero (None where every k_j = 0)."""
    if all(k <= 0 for k in ks):
        return None
    r = w.lo.rank
    zero = g.scalar(0, r)
    lo_mask = [((1 << min(k, 32)) - 1) if k < 32 else -1 for k in ks]
    lo_ok = g.eq(g.band(w.lo, _per_channel(g, lo_mask, r)), zero)
    if all(k <= 32 for k in ks):
        return lo_ok
    hi_mask = [(1 << max(k - 32, 0)) - 1 for k in ks]
    return g.land(lo_ok, g.eq(g.band(w.hi, _per_channel(g, hi_mask, r)), zero))


def floor_shift(g: Graph, w: Wide, c: int | Sequence[int], lo: int | None = None,
                hi: int | None = None) -> Val:
    """⌊value / 2^c_j⌋ as int32, c_j in 0..63 per channel (one value, or one per last-axis
    channel). Its interval — [lo, hi] if the caller proves a tighter one — must fit int32."""
    cs = [c] if isinstance(c, int) else list(c)
    if lo is None or hi is None:
        lo, hi = min(w.vlo >> k for k in cs), max(w.vhi >> k for k in cs)
    if not fits(lo, hi, "int32"):
        raise ExportError(f"floor({w.lo.name}/2^{c}): [{lo}, {hi}] does not fit int32")
    r = w.lo.rank
    parts: list[tuple[Val | None, Val]] = []
    if any(k == 0 for k in cs):
        parts.append((_mask(g, [k == 0 for k in cs], r), w.lo))
    if any(0 < k < 32 for k in cs):
        ks = [k if 0 < k < 32 else 1 for k in cs]
        sh_hi = 32 - ks[0] if len(set(ks)) == 1 else _per_channel(g, [32 - k for k in ks], r)
        sh_lo = ks[0] if len(set(ks)) == 1 else _per_channel(g, ks, r)
        q = g.bor(g.shl(w.hi, sh_hi, wrap=True), g.lsr(w.lo, sh_lo))
        parts.append((_mask(g, [0 < k < 32 for k in cs], r), q))
    if any(k >= 32 for k in cs):
        ks = [min(max(k - 32, 0), 31) for k in cs]
        q = g.ars(w.hi, ks[0] if len(set(ks)) == 1 else _per_channel(g, ks, r))
        parts.append((_mask(g, [k >= 32 for k in cs], r), q))
    out = parts[0][1]
    for mask, q in parts[1:]:
        assert mask is not None
        out = g.select(mask, q, out)
    return _reinterpret(g, out, lo, hi)


def _reinterpret(g: Graph, v: Val, lo: int, hi: int) -> Val:
    """``v`` whose bits are known (by the caller's proof) to hold a value in [lo, hi]."""
    return Val(v.name, v.shape, v.dtype, lo, hi)


def is_negative(g: Graph, w: Wide) -> Val:
    return g.gt(g.scalar(0, w.hi.rank), w.hi)


def _increment(g: Graph, w: Wide, cs: list[int], rounding: str) -> Val | None:
    """0/1: the named rounding's step up from the floor of value / 2^c_j, decided by the
    half bit (c_j - 1), the bits below it, the sign and the floor's parity (bit c_j)."""
    if all(k == 0 for k in cs) or rounding == "floor":
        return None
    half = _bit(g, w, [max(k - 1, 0) for k in cs])
    r = w.lo.rank
    zero = g.scalar(0, r)
    if any(k == 0 for k in cs):  # no rounding where c = 0
        half = g.select(_mask(g, [k == 0 for k in cs], r), zero, half)
    below = _low_zero(g, w, [max(k - 1, 0) for k in cs])
    if rounding == "half_up":
        return half
    if rounding in ("half_even", "half_away"):
        cond = (g.eq(_bit(g, w, [min(k, 62) for k in cs]), zero) if rounding == "half_even"
                else is_negative(g, w))
        tie_back = cond if below is None else g.land(below, cond)
        return g.select(tie_back, zero, half)
    exact = g.eq(half, zero) if below is None else g.land(g.eq(half, zero), below)
    inc = g.b2i(g.lnot(exact))  # ceil / trunc: +1 unless exact (trunc: only below zero)
    if rounding == "trunc":
        inc = g.select(is_negative(g, w), inc, zero)
    return inc


def round_shift(g: Graph, w: Wide, c: int | Sequence[int], rounding: str,
                lo: int | None = None, hi: int | None = None,
                floor_lo: int | None = None) -> Val:
    """refq's ``rounding`` of value / 2^c_j as int32 (c_j in 0..63, per channel or one).
    The result interval is [lo, hi] (and the floor quotient's lower end ``floor_lo``) where
    the caller proves them, else derived from the value interval; they must fit int32."""
    if rounding not in ROUNDINGS:
        raise ExportError(f"unknown rounding {rounding!r}")
    cs = [c] if isinstance(c, int) else [int(k) for k in c]
    if any(not 0 <= k <= 63 for k in cs):
        raise ExportError(f"round_shift: shift {c} outside 0..63")
    if lo is None or hi is None:
        lo = min(round_int(w.vlo, k, rounding) for k in cs)
        hi = max(round_int(w.vhi, k, rounding) for k in cs)
    qlo = lo - 1 if floor_lo is None else floor_lo  # floor <= rounded <= floor + 1
    q = floor_shift(g, w, cs, qlo, hi)
    inc = _increment(g, w, cs, rounding)
    return _reinterpret(g, q, lo, hi) if inc is None else g.add(q, inc, proven=(lo, hi))


def round_shift_wide(g: Graph, w: Wide, c: int, rounding: str) -> Wide:
    """refq's ``rounding`` of value / 2^c (0 <= c <= 63) as a 64-bit value."""
    if c == 0:
        return w
    q = shift_right(g, w, c) if c < 32 else from_i32(g, g.ars(w.hi, c - 32))
    inc = _increment(g, w, [c], rounding)
    lo, hi = round_int(w.vlo, c, rounding), round_int(w.vhi, c, rounding)
    out = q if inc is None else add(g, q, from_i32(g, inc))
    return Wide(out.hi, out.lo, lo, hi)


def shift_right(g: Graph, w: Wide, c: int) -> Wide:
    """⌊value / 2^c⌋ as a 64-bit value, 1 <= c <= 31."""
    if not 1 <= c <= 31:
        raise ExportError(f"wide shift_right by {c}")
    lo = g.bor(g.lsr(w.lo, c), g.shl(w.hi, 32 - c, wrap=True))
    hi = g.ars(w.hi, c)
    return Wide(hi, lo, w.vlo >> c, w.vhi >> c)


def select(g: Graph, cond: Val, a: Wide, b: Wide) -> Wide:
    """a where cond, else b, word by word."""
    return Wide(g.select(cond, a.hi, b.hi), g.select(cond, a.lo, b.lo), min(a.vlo, b.vlo),
                max(a.vhi, b.vhi))


def add(g: Graph, a: Wide, b: Wide) -> Wide:
    """a + b exactly (the low words added in 16-bit halves with carries)."""
    vlo, vhi = a.vlo + b.vlo, a.vhi + b.vhi
    lo_a, lo_b = g.bandc(a.lo, 0xFFFF), g.bandc(b.lo, 0xFFFF)
    s0 = g.add(lo_a, lo_b)
    s1 = g.add(g.add(g.lsr(a.lo, 16), g.lsr(b.lo, 16)), g.ars(s0, 16))
    lo = g.bor(g.shl(g.bandc(s1, 0xFFFF), 16, wrap=True), g.bandc(s0, 0xFFFF))
    hlo, hhi = vlo >> 32, vhi >> 32  # the sum's high word; the carry below is 0 or 1
    if not fits(hlo - 1, hhi, "int32"):
        raise ExportError(f"wide add: [{vlo}, {vhi}] leaves 64 bits")
    hi = g.add(g.add(a.hi, b.hi, proven=(hlo - 1, hhi)), g.ars(s1, 16), proven=(hlo, hhi))
    return Wide(hi, lo, vlo, vhi)


def add_i32(g: Graph, a: Wide, x: Val) -> Wide:
    return add(g, a, from_i32(g, x))


def const(g: Graph, value: int, rank: int) -> Wide:
    v = int(value)
    return Wide(g.scalar(v >> 32, rank), g.scalar(_lo_word(v), rank), v, v)


def _lo_word(v: int) -> int:
    lo = v & (_U32 - 1)
    return lo - _U32 if lo >= 1 << 31 else lo


def _words(g: Graph, values: Sequence[int], rank: int) -> tuple[Val, Val]:
    """(hi, lo) word constants of int64 values, broadcasting along the last axis."""
    return (_per_channel(g, [v >> 32 for v in values], rank),
            _per_channel(g, [_lo_word(v) for v in values], rank))


def mul_const(g: Graph, a: Wide, m: int | Sequence[int],
              within: tuple[int, int, str] | None = None) -> Wide:
    """a · m_j for non-negative int32 constants m_j (one, or one per last-axis channel).

    With a = h·2^32 + lo_u and lo_u = lo + 2^32·[lo < 0] (lo read signed), a = h'·2^32 + lo
    for h' = h + [lo < 0], so a·m = (h'·m)·2^32 + lo·m: the high word is h'·m plus the high
    word of the exact 64-bit lo·m (|lo·m| < 2^62). h'·m = hi(a·m) - hi(lo·m) is bounded by
    the result's interval — from the operands, or ``within`` = (lo, hi, reason), a bound on
    a·m that refq checks (recorded as an assumption)."""
    ms = [m] if isinstance(m, int) else [int(v) for v in m]
    if any(not 0 <= v < 1 << 31 for v in ms):
        raise ExportError(f"wide multiply by {m}: constant outside [0, 2^31)")
    prods = [x * v for x in (a.vlo, a.vhi) for v in ms]
    vlo, vhi = min(prods), max(prods)
    if within is not None and not (within[0] <= vlo and vhi <= within[1]):
        vlo, vhi = max(vlo, within[0]), min(vhi, within[1])
        g.assumptions.append(within[2])
    if vlo < -(2**63) or vhi >= 2**63:
        raise ExportError(f"wide multiply by {m}: the product may leave 64 bits")
    r = a.lo.rank
    mc = _per_channel(g, ms, r)
    low = mul64(g, a.lo, mc)  # lo·m, exact
    hp = g.add(a.hi, g.b2i(g.gt(g.scalar(0, r), a.lo)))
    top = (vlo >> 32, vhi >> 32)
    hm = g.mul(hp, mc, proven=(top[0] - low.hi.hi, top[1] - low.hi.lo))
    hi = g.add(hm, low.hi, proven=top)
    return Wide(hi, low.lo, vlo, vhi)


def ge_const(g: Graph, a: Wide, t: int | Sequence[int]) -> Val:
    """Bool: value >= t_j (int64 thresholds, one or one per last-axis channel)."""
    ts_ = [t] if isinstance(t, int) else [int(v) for v in t]
    r = a.lo.rank
    th, tl = _words(g, ts_, r)
    hi_gt = g.gt(a.hi, th)
    hi_eq = g.eq(a.hi, th)
    flip = g.scalar(-(1 << 31), r)  # unsigned order of the low words: flip the sign bit
    lo_ge = g.ge(g.bxor(a.lo, flip), g.bxor(tl, flip))
    return g.lor(hi_gt, g.land(hi_eq, lo_ge))


def ge(g: Graph, a: Wide, b: Wide) -> Val:
    """Bool: a >= b for two 64-bit values (signed high words, unsigned low words)."""
    flip = g.scalar(-(1 << 31), a.lo.rank)
    hi_gt = g.gt(a.hi, b.hi)
    hi_eq = g.eq(a.hi, b.hi)
    lo_ge = g.ge(g.bxor(a.lo, flip), g.bxor(b.lo, flip))
    return g.lor(hi_gt, g.land(hi_eq, lo_ge))


def negate(g: Graph, a: Wide) -> Wide:
    """-a (two's complement: the words inverted, plus one)."""
    if a.vlo <= -(2**63):
        raise ExportError("wide negate of -2^63")
    ones = g.scalar(-1, a.lo.rank)
    inv = Wide(g.with_interval(g.bxor(a.hi, ones), -(a.vhi >> 32) - 1, -(a.vlo >> 32) - 1),
               g.bxor(a.lo, ones), -a.vhi - 1, -a.vlo - 1)
    out = add(g, inv, const(g, 1, a.lo.rank))
    return Wide(out.hi, out.lo, -a.vhi, -a.vlo)


def sub(g: Graph, a: Wide, b: Wide, vlo: int | None = None, vhi: int | None = None) -> Wide:
    """a - b; the result interval [vlo, vhi] where the caller proves a tighter one."""
    d = add(g, a, negate(g, b))
    lo = d.vlo if vlo is None else max(d.vlo, vlo)
    hi = d.vhi if vhi is None else min(d.vhi, vhi)
    return Wide(_reinterpret(g, d.hi, lo >> 32, hi >> 32), d.lo, lo, hi)


def shl1(g: Graph, a: Wide) -> Wide:
    """2·a (|a| < 2^62)."""
    if a.vlo < -(2**62) or a.vhi >= 2**62:
        raise ExportError("wide 2·a may leave 64 bits")
    hi = g.bor(g.shl(a.hi, 1, wrap=True), g.lsr(a.lo, 31))
    return Wide(_reinterpret(g, hi, (2 * a.vlo) >> 32, (2 * a.vhi) >> 32),
                g.shl(a.lo, 1, wrap=True), 2 * a.vlo, 2 * a.vhi)


def clamp(g: Graph, a: Wide, lo: Sequence[int], hi: Sequence[int]) -> Wide:
    """min(max(value, lo_j), hi_j) per channel (int64 bounds, lo_j <= hi_j)."""
    r = a.lo.rank
    under = g.lnot(ge_const(g, a, lo))
    over = ge_const(g, a, [v + 1 for v in hi])
    lh, ll = _words(g, lo, r)
    hh, hl = _words(g, hi, r)
    h = g.select(over, hh, g.select(under, lh, a.hi))
    lw = g.select(over, hl, g.select(under, ll, a.lo))
    vlo, vhi = max(a.vlo, min(lo)), min(a.vhi, max(hi))
    return Wide(_reinterpret(g, h, vlo >> 32, vhi >> 32), lw, vlo, vhi)


def saturate_i32(g: Graph, a: Wide, lo: int = I32[0], hi: int = I32[1]) -> Val:
    """min(max(value, lo), hi) as int32 (lo, hi within int32)."""
    if lo <= a.vlo and a.vhi <= hi:
        return floor_shift(g, a, 0)
    over = ge_const(g, a, hi + 1)
    under = g.lnot(ge_const(g, a, lo))
    v = g.select(over, g.scalar(hi, a.lo.rank), g.i32(a.lo))
    v = g.select(under, g.scalar(lo, a.lo.rank), v)
    return _reinterpret(g, v, max(lo, min(a.vlo, hi)), min(hi, max(a.vhi, lo)))


__all__ = [
    "ROUNDINGS",
    "Wide",
    "add",
    "add_i32",
    "clamp",
    "const",
    "floor_shift",
    "from_i32",
    "from_shifted",
    "ge",
    "ge_const",
    "is_negative",
    "mul64",
    "mul_const",
    "negate",
    "round_int",
    "round_shift",
    "round_shift_wide",
    "saturate_i32",
    "select",
    "shift_right",
    "shl1",
    "sub",
]
