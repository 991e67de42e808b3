"""``requantize.fp32`` (a CPU's binary32 requantization, refq.ops.requantize_fp32) as an exact
TOSA int32 sequence.

refq models the float arithmetic in integers: y = rne(rn24(rn24(x)·m) / 2^c), rn24 rounding
an integer to 24 significant bits (ties to even), then saturate(y + zp). The same steps here,
each on int32 tensors:

1. x is raised to >= -2^31 + 1 (rn24(-2^31 + 1) = rn24(-2^31) = -2^31: same output). y is
   monotone in x, so per channel the inputs whose output saturates are two rays, decided by
   compares and SELECTs at the end; x is clamped into the unsaturated interval between them,
   where |y| < 2^31. a = |x|, the sign kept apart (every rounding below is symmetric).
2. rn24(a) = s1·2^d: the bit length L = 32 - CLZ(a), d = max(L - 24, 0) in 0..7,
   s1 = half_even(a / 2^d) by a variable ARITHMETIC_RIGHT_SHIFT, the remainder a & (2^d - 1)
   and the tie test 2·rem - 2^d (> 0: up; = 0: up when the quotient is odd); s1 <= 2^24.
3. P = s1·m < 2^48 exactly (two MULs, refq.interop.tosa.wide); its bit length from CLZ of the
   high word (> 0) or of the low word's 32 bits; d2 = max(L - 24, 0) in 0..24; the quotient
   (hi << (32 - d2)) | (lo >>> d2) < 2^24 and the remainder lo & (2^d2 - 1) give
   s2 = half_even(P / 2^d2) <= 2^24 the same way. rn24(P) = s2·2^(d + d2).
4. k = c - (d + d2) per element: k > 0 rounds s2 / 2^k half-even (k capped at 26: s2 < 2^25
   rounds to 0 beyond), k <= 0 is s2·2^-k, exact. The magnitude is bounded by the output at
   the saturation points (monotone), which is what proves the left shift within int32.
5. The sign back, CLAMP to the output format's ends less zp, + zp.

``fp32_zp`` (the zero point added in binary32 before the rounding) and ``fp64`` are not
translated (ExportError).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from refq.interop.tosa import wide
from refq.interop.tosa.graph import ExportError, Graph, Val
from refq.interop.tosa.requant import _first_true, _last_true, _vec, centered_input
from refq.interop.tosa.values import Operand, as_i32
from refq.intmath import IntFormat
from refq.ops.requantize import RequantParams

_MIN_X = -(2**31) + 1


def fp32_reference(x: int, m: int, c: int) -> int:
    """refq's fp32_scale on one Python int (static bounds only)."""
    from refq.ops.requantize_fp32 import fp32_scale

    return int(fp32_scale(np.array([x], dtype=np.int64), m, c)[0])


def _at_most(m: int, c: int, bound: int, x: int) -> bool:
    return fp32_reference(x, m, c) <= bound


def _at_least(m: int, c: int, bound: int, x: int) -> bool:
    return fp32_reference(x, m, c) >= bound


def _round_even_low(g: Graph, q: Val, low: Val, d: Val, top: int) -> Val:
    """q + [the d low bits ``low`` round q up, ties to even] (d may be 0: no rounding); the
    caller proves the result within [0, top]."""
    one = g.scalar(1, q.rank)
    t = g.sub(g.shl(low, 1), g.shl(one, d))  # 2·rem - 2^d: its sign decides
    tie_up = g.land(g.eq(t, g.scalar(0, q.rank)), g.eq(g.band(q, one), one))
    up = g.lor(g.gt(t, g.scalar(0, q.rank)), tie_up)
    return g.add(q, g.b2i(up), proven=(0, top))


def _low_bits(g: Graph, v: Val, d: Val) -> Val:
    """v & (2^d - 1) for 0 <= d <= 30."""
    mask = g.addc(g.shl(g.scalar(1, v.rank), d), -1)
    return g.band(v, mask)


def fp32(g: Graph, x: Val, p: RequantParams) -> Val:
    """``requantize.fp32`` (module docstring)."""
    xi, m_lo, m_hi = centered_input(g, x, p)
    zp = p.out_zero_point
    rank = xi.rank
    ms, cs = [int(v) for v in p.multiplier], [int(v) for v in p.shift]
    if any(not 0 <= m < 1 << 24 for m in ms) or any(not 0 <= c <= 63 for c in cs):
        raise ExportError("requantize.fp32: mantissa outside [0, 2^24) or shift outside 0..63")
    x0 = max(xi.lo, _MIN_X)
    xs = g.maximum(xi, g.scalar(x0, rank)) if x0 > xi.lo else xi
    # per channel: x <= lo_j gives <= m_lo, x >= hi_j gives >= m_hi (selects below); the
    # computed region [lo_j + 1, hi_j - 1] keeps |y| < 2^31 (an empty region computes at 0)
    under_t: list[int] = []
    over_t: list[int] = []
    c_lo: list[int] = []
    c_hi: list[int] = []
    for m, c in zip(ms, cs, strict=True):
        x_lo = _last_true(x0, xi.hi, partial(_at_most, m, c, m_lo))  # x0 - 1: none
        x_hi = _first_true(x0, xi.hi, partial(_at_least, m, c, m_hi))  # xi.hi + 1: none
        under_t.append(x_lo + 1 if x_lo >= x0 else -(2**31))  # x < t: saturated low
        over_t.append(x_hi - 1 if x_hi <= xi.hi else 2**31 - 1)  # x > t: saturated high
        r_lo, r_hi = max(x_lo + 1, x0), min(x_hi - 1, xi.hi)
        c_lo.append(r_lo if r_lo <= r_hi else 0)
        c_hi.append(r_hi if r_lo <= r_hi else 0)
    xc = g.maximum(xs, _vec(g, c_lo, rank))
    xc = g.minimum(xc, _vec(g, c_hi, rank))
    xc = g.with_interval(xc, min(c_lo), max(c_hi))
    ends = [abs(fp32_reference(v, m, c)) for bs in (c_lo, c_hi)
            for v, m, c in zip(bs, ms, cs, strict=True)]
    top = max(ends)  # |y| at the region's ends bounds every computed |y| (monotone)
    negative = g.gt(g.scalar(0, rank), xc)
    a = g.abs(xc)
    # 2. rn24(a) = s1·2^d
    d = g.maximum(g.addc(g.sub(g.scalar(32, rank), g.clz(a)), -24), g.scalar(0, rank))
    d = g.with_interval(d, 0, 7)
    s1 = _round_even_low(g, g.ars(a, d), _low_bits(g, a, d), d, 1 << 24)
    # 3. P = s1·m, rn24(P) = s2·2^(d + d2)
    prod = wide.mul64(g, s1, _vec(g, ms, rank) if len(ms) > 1 else g.scalar(ms[0], rank))
    hi = g.with_interval(prod.hi, 0, (1 << 16) - 1)
    len_hi = g.sub(g.scalar(64, rank), g.clz(hi))
    len_lo = g.sub(g.scalar(32, rank), g.clz(prod.lo))
    length = g.select(g.gt(hi, g.scalar(0, rank)), len_hi, len_lo)
    d2 = g.with_interval(g.maximum(g.addc(length, -24), g.scalar(0, rank)), 0, 24)
    up_shift = g.minimum(g.sub(g.scalar(32, rank), d2), g.scalar(31, rank))
    q2 = g.bor(g.shl(hi, up_shift, wrap=True), g.lsr(prod.lo, d2))
    q2 = g.with_interval(q2, 0, (1 << 24) - 1)
    s2 = _round_even_low(g, q2, _low_bits(g, prod.lo, d2), d2, 1 << 24)
    # 4. rne(s2·2^(d + d2) / 2^c)
    k = g.sub(_vec(g, cs, rank) if len(cs) > 1 else g.scalar(cs[0], rank), g.add(d, d2))
    kr = g.maximum(g.minimum(k, g.scalar(26, rank)), g.scalar(0, rank))
    right = _round_even_low(g, g.ars(s2, kr), _low_bits(g, s2, kr), kr, 1 << 24)
    kl = g.minimum(g.maximum(g.sub(g.scalar(0, rank), k), g.scalar(0, rank)),
                   g.scalar(31, rank))
    left = g.shl(s2, kl, wrap=True)
    mag = g.with_interval(g.select(g.gt(k, g.scalar(0, rank)), right, left), 0, top)
    # 5. sign, saturation, zero point
    y = g.select(negative, g.sub(g.scalar(0, rank), mag), mag)
    y = g.clamp(y, m_lo, m_hi)
    if any(t > -(2**31) for t in under_t):
        y = g.select(g.gt(_vec(g, under_t, rank), xs), g.scalar(m_lo, rank), y)
    if any(t < 2**31 - 1 for t in over_t):
        y = g.select(g.gt(xs, _vec(g, over_t, rank)), g.scalar(m_hi, rank), y)
    return g.addc(y, zp) if zp else y


def requantize_fp32(g: Graph, ins: Sequence[Operand], p: RequantParams,
                    out: IntFormat) -> Val:
    """Translation of ``requantize.fp32`` (one input ``x``, per-channel on the last axis)."""
    (x,) = ins
    return fp32(g, as_i32(g, x), p)


__all__ = ["fp32", "fp32_reference", "requantize_fp32"]
