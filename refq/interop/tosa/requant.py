"""refq requantization (``requantize.dyadic``/``double``/``single``) and the residual adds
(``add.ivit``/``shared_shift``) as exact TOSA sequences.

Saturation first. refq saturates y = round(x·b/2^c) + zp to the output format; y is monotone
in x (b >= 0), so for each channel there are input bounds X_lo <= X_hi beyond which the
output is the format's min or max. The export computes them exactly (binary search on
Python ints) and clamps x into [X_lo, X_hi] (or selects the saturated value outside it);
within those bounds every intermediate is small, which is what lets RESCALE's input-range
precondition and the int32 quotient be proven.

``dyadic``: TOSA's own roundings (RESCALE SINGLE_ROUND, MUL with shift, ARITHMETIC_RIGHT_SHIFT
round) are all half-up. For a nearest rounding whose clamped result fits int32, one MUL with
shift (one shift for all channels) or RESCALE SINGLE_ROUND (per-channel shifts) gives the
half-up result, and a tie correction makes it half-even/half-away (:func:`nearest`: the
product is a tie exactly when x ≡ 2^(k-1) mod 2^k, k = c - trailing zeros of b). Otherwise
the 64-bit product x·b from two MULs, then refq's named rounding of /2^c from its bits
(refq.interop.tosa.wide): half-even, half-away, floor, ceil and trunc decided from the
product's half bit and the bits below it.

``double``/``single`` (TFLite MultiplyByQuantizedMultiplier): one RESCALE, DOUBLE_ROUND or
SINGLE_ROUND, multiplier M and shift 31 - s, after the saturation clamp. TOSA's DOUBLE_ROUND
(+2^(shift-1) ± 2^30 for shift > 31, one floor) equals TFLite's SaturatingRoundingDoubling-
HighMul then RoundingDivideByPOT; with shift <= 31 both round once, half up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from refq.interop.tosa import wide
from refq.interop.tosa.graph import ExportError, Graph, Val, fits
from refq.interop.tosa.values import Operand, Value, as_i32, tensor, value_interval
from refq.interop.tosa.wide import Wide, round_int
from refq.intmath import IntFormat
from refq.ops.add import AddParams
from refq.ops.requantize import RequantParams


def _last_true(lo: int, hi: int, pred: Callable[[int], bool]) -> int:
    """The largest x in [lo, hi] with pred(x) (pred true then false), or lo - 1."""
    if not pred(lo):
        return lo - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if pred(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _first_true(lo: int, hi: int, pred: Callable[[int], bool]) -> int:
    """The smallest x in [lo, hi] with pred(x) (pred false then true), or hi + 1."""
    if not pred(hi):
        return hi + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _rounded_at_most(b: int, c: int, rounding: str, bound: int, x: int) -> bool:
    return round_int(x * b, c, rounding) <= bound


def _rounded_at_least(b: int, c: int, rounding: str, bound: int, x: int) -> bool:
    return round_int(x * b, c, rounding) >= bound


def _floor_at_least(b: int, c: int, bound: int, x: int) -> bool:
    return (x * b) >> c >= bound


def _tflite_at_least(m: int, s: int, family: str, bound: int, x: int) -> bool:
    return tflite_reference(x, m, s, family) >= bound


def _tflite_at_most(m: int, s: int, family: str, bound: int, x: int) -> bool:
    return tflite_reference(x, m, s, family) <= bound


def _vec(g: Graph, values: Sequence[int], rank: int) -> Val:
    arr = np.asarray([int(v) for v in values], dtype=np.int64)
    return g.const(arr.reshape((1,) * (rank - 1) + (arr.size,)), "int32")


def _trailing_zeros(b: int) -> int:
    return (b & -b).bit_length() - 1 if b else 64


def nearest(g: Graph, x: Val, mult: Sequence[int], shift: Sequence[int], rounding: str,
            bounds: Sequence[tuple[int, int]]) -> Val | None:
    """round(x·b_j/2^c_j) for a nearest rounding (half_up/half_even/half_away), int32 x
    whose values in channel j lie in ``bounds[j]``, as TOSA's own half-up rounding — MUL
    with shift (one shift) or RESCALE SINGLE_ROUND (per-channel shifts; its input-range
    precondition proven from ``bounds``) — plus the tie correction: x·b/2^c is a tie
    exactly when x ≡ 2^(k-1) (mod 2^k), k = c - (trailing zeros of b), possible for int32 x
    only when k <= 32; there half_even steps back where the half-up result is odd, half_away
    where x < 0. None where the result (± 1) could leave int32 or RESCALE does not apply."""
    if rounding not in ("half_up", "half_even", "half_away"):
        return None
    bs, cs = [int(b) for b in mult], [int(c) for c in shift]
    if any(not 0 <= b < 2**31 for b in bs):
        return None
    outs = [round_int(v * b, c, "half_up") for (lo, hi), b, c in zip(bounds, bs, cs,
                                                                   strict=True)
            for v in (lo, hi)]
    lo, hi = min(outs), max(outs)
    if not fits(lo - 1, hi + 1, "int32"):
        return None
    rank = x.rank
    if len(set(cs)) == 1:
        c = cs[0]
        bv = g.scalar(bs[0], rank) if len(bs) == 1 else _vec(g, bs, rank)
        h = g.mul(x, bv, c, proven=(lo, hi))
    else:
        if any(not 2 <= c <= 62 or (
                c <= 32 and not (-(1 << (c - 1)) <= x.lo and x.hi < (1 << (c - 1))))
               for c in cs):
            return None  # RESCALE's precondition is checked on x's own (all-channel) range
        h = g.rescale(x, bs, cs, "int32", rounding="SINGLE_ROUND")
        h = g.with_interval(h, lo, hi)
    if rounding == "half_up":
        return h
    ks = [c - _trailing_zeros(b) if b else 0 for b, c in zip(bs, cs, strict=True)]
    can_tie = [1 <= k <= 32 for k in ks]
    if not any(can_tie):
        return h
    masks = [((1 << k) - 1 if k < 32 else -1) if t else 0 for k, t in zip(ks, can_tie,
                                                                         strict=True)]
    ties = [((1 << (k - 1)) if k < 32 else -(1 << 31)) if t else 1
            for k, t in zip(ks, can_tie, strict=True)]
    tie = g.eq(g.band(x, _vec(g, masks, rank)), _vec(g, ties, rank))
    zero = g.scalar(0, rank)
    if rounding == "half_even":
        back = g.land(tie, g.lnot(g.eq(g.bandc(h, 1), zero)))
    else:
        back = g.land(tie, g.gt(zero, x))
    return g.sub(h, g.b2i(back), proven=(lo - 1, hi))


def _dyadic_nearest(g: Graph, x: Val, bs: Sequence[int], cs: Sequence[int], rounding: str,
                    zp: int, fmt: IntFormat) -> Val | None:
    """The nearest-rounding path of :func:`dyadic`: clamp x to each channel's saturation
    points (the smallest x whose result reaches the format's max, the largest whose result
    reaches its min: every x beyond gives the same output), round with :func:`nearest`, add
    the zero point, clamp."""
    xlo, xhi = x.lo, x.hi
    m_lo, m_hi = fmt.min - zp, fmt.max - zp
    bounds = []
    for b, c in zip(bs, cs, strict=True):
        if b == 0:
            bounds.append((xlo, xhi))
            continue
        top = _first_true(xlo, xhi, partial(_rounded_at_least, b, c, rounding, m_hi))
        bot = _last_true(xlo, xhi, partial(_rounded_at_most, b, c, rounding, m_lo))
        bounds.append((max(bot, xlo), min(top, xhi)))
    rank = x.rank
    xc = g.i32(x)
    if any(lo > xlo for lo, _ in bounds):
        xc = g.maximum(xc, _vec(g, [lo for lo, _ in bounds], rank))
    if any(hi < xhi for _, hi in bounds):
        xc = g.minimum(xc, _vec(g, [hi for _, hi in bounds], rank))
    q = nearest(g, xc, bs, cs, rounding, bounds)
    if q is None:
        return None
    q = g.addc(q, zp) if zp else q
    return g.clamp(q, fmt.min, fmt.max)


def dyadic(g: Graph, x0: Operand, mult: Sequence[int], shift: Sequence[int], rounding: str,
           zp: int, fmt: IntFormat, in_zp: int = 0) -> Val:
    """saturate(round((x - in_zp)·b/2^c) + zp, fmt) exactly, per channel (int32 result)."""
    x = tensor(g, x0)
    if any(b >= 1 << 31 for b in mult):
        raise ExportError("requantize.dyadic: multiplier >= 2^31 has no int32 encoding")
    if in_zp:
        x = g.addc(as_i32(g, x), -in_zp) if isinstance(x, Val) or fits(
            x.vlo - in_zp, x.vhi - in_zp, "int32") else wide.add(g, x, wide.const(g, -in_zp,
                                                                                  x.lo.rank))
    bs, cs = list(mult), list(shift)
    if isinstance(x, Val):
        fast = _dyadic_nearest(g, x, bs, cs, rounding, zp, fmt)
        if fast is not None:
            return fast
    xlo, xhi = value_interval(x)
    m_lo, m_hi = fmt.min - zp, fmt.max - zp
    lo_b, hi_b, eff = [], [], []
    for b, c in zip(bs, cs, strict=True):
        if b == 0:
            lo_b.append(xlo)
            hi_b.append(xhi)
            eff.append(0)
            continue
        x_hi = _last_true(xlo, xhi, partial(_rounded_at_most, b, c, rounding, m_hi))
        x_lo = _first_true(xlo, xhi, partial(_floor_at_least, b, c, m_lo))
        if x_lo > x_hi:  # no unsaturated input: the output is decided by the selects alone
            lo_b.append(x_lo)
            hi_b.append(x_hi)
            eff.append(0)
            continue
        lo_b.append(x_lo)
        hi_b.append(x_hi)
        eff.append(b)
    rank = x.rank if isinstance(x, Val) else x.lo.rank
    need_hi = any(h < xhi for h in hi_b)
    need_lo = any(lo > xlo for lo in lo_b)
    clo = [min(max(lo, xlo), xhi) if e else xlo for lo, e in zip(lo_b, eff, strict=True)]
    chi = [max(min(h, xhi), xlo) if e else xlo for h, e in zip(hi_b, eff, strict=True)]
    if isinstance(x, Val):
        xi = g.i32(x)
        xc = xi
        if need_lo:
            xc = g.maximum(xc, _vec(g, clo, rank))
        if need_hi:
            xc = g.minimum(xc, _vec(g, chi, rank))
        prod = wide.mul64(g, xc, _vec(g, eff, rank) if len(eff) > 1 else g.scalar(eff[0], rank))
    else:
        xc_w = wide.clamp(g, x, clo, chi) if (need_lo or need_hi) else x
        prod = wide.mul_const(g, xc_w, eff)
    plo = min(lo * b for lo, b in zip(clo, eff, strict=True))
    phi = max(h * b for h, b in zip(chi, eff, strict=True))
    prod = Wide(prod.hi, prod.lo, plo, phi)
    rlo = min(round_int(lo * b, c, rounding) for lo, b, c in zip(clo, eff, cs, strict=True))
    rhi = max(round_int(h * b, c, rounding) for h, b, c in zip(chi, eff, cs, strict=True))
    flo = min((lo * b) >> c for lo, b, c in zip(clo, eff, cs, strict=True))
    q = wide.round_shift(g, prod, cs, rounding, rlo, rhi, floor_lo=flo)
    if need_hi:
        over = _over(g, x, hi_b, rank)
        q = g.select(over, g.scalar(m_hi, rank), q)
    if need_lo:
        under = _under(g, x, lo_b, rank)
        q = g.select(under, g.scalar(m_lo, rank), q)
    return g.addc(q, zp) if zp else q


def _over(g: Graph, x: Value, bound: Sequence[int], rank: int) -> Val:
    if isinstance(x, Val):
        return g.gt(g.i32(x), _vec(g, [max(min(b, 2**31 - 1), -(2**31)) for b in bound], rank))
    return wide.ge_const(g, x, [b + 1 for b in bound])


def _under(g: Graph, x: Value, bound: Sequence[int], rank: int) -> Val:
    if isinstance(x, Val):
        return g.gt(_vec(g, [max(min(b, 2**31 - 1), -(2**31)) for b in bound], rank), g.i32(x))
    return g.lnot(wide.ge_const(g, x, list(bound)))


RESCALE_ROUNDING = {"double": "DOUBLE_ROUND", "single": "SINGLE_ROUND"}
"""The RESCALE rounding mode of each TFLite requantization family."""


def centered_input(g: Graph, x: Val, p: RequantParams) -> tuple[Val, int, int]:
    """The requantizations' common start: x - in_zero_point as int32 (its interval within
    int32), and the output range relative to the output zero point, fmt.min - zp and
    fmt.max - zp, that the scaled value saturates to."""
    xi = g.i32(x)
    if p.in_zero_point:
        xi = g.addc(xi, -p.in_zero_point)
    xi = g.with_interval(xi, max(xi.lo, -(2**31)), min(xi.hi, 2**31 - 1))
    fmt, zp = p.out_format, p.out_zero_point
    return xi, fmt.min - zp, fmt.max - zp


def tflite_reference(x: int, m: int, s: int, family: str) -> int:
    """TFLite MultiplyByQuantizedMultiplier on Python ints (static bounds only)."""
    if family == "single":
        t = 31 - s
        return (x * m + (1 << (t - 1))) >> t
    left, right = max(s, 0), max(-s, 0)
    ab = (x << left) * m
    r1 = (ab + (1 << 30)) >> 31  # SaturatingRoundingDoublingHighMul: ties toward +inf
    if right == 0:
        return r1
    return -((-r1 + (1 << (right - 1))) >> right) if r1 < 0 else (r1 + (1 << (right - 1))) >> right


def tflite(g: Graph, x: Val, p: RequantParams) -> Val:
    """``requantize.double``/``single``: clamp, RESCALE, + zp, clamp (module docstring).

    Where RESCALE's preconditions (shift 2..62; |x| < 2^(shift-1) for shift <= 31) cannot
    be proven even after the saturation clamp, the graph's ``rescale`` policy decides:
    ``exact`` (default) computes the same integers by the exact 64-bit path (for shifts
    s >= 0 both TFLite roundings are one round-half-up of x·M / 2^(31-s)), ``native`` keeps
    the RESCALE and records the data-dependent precondition (TOSA: UNPREDICTABLE beyond it).
    """
    family = p.family
    xi, m_lo, m_hi = centered_input(g, x, p)
    fmt, zp = p.out_format, p.out_zero_point
    rank = xi.rank
    mults, shifts = list(p.multiplier), [31 - s for s in p.shift]
    lo_b, hi_b = [], []
    for m, s in zip(mults, p.shift, strict=True):
        if m == 0:  # the result is 0 for every x: any x will do
            lo_b.append(max(xi.lo, 0))
            hi_b.append(max(xi.lo, 0))
            continue
        x_hi = _first_true(xi.lo, xi.hi, partial(_tflite_at_least, m, s, family, m_hi))
        x_lo = _last_true(xi.lo, xi.hi, partial(_tflite_at_most, m, s, family, m_lo))
        lo_b.append(max(x_lo, xi.lo))
        hi_b.append(min(x_hi, xi.hi))
    unproven = [t for t, lo, hi in zip(shifts, lo_b, hi_b, strict=True)
                if t < 2 or not (-(1 << (t - 1)) <= lo and hi < (1 << (t - 1)))]
    if unproven and g.rescale_policy == "exact" and all(s >= 0 for s in p.shift):
        g.notes.append(f"requantize.{family}: RESCALE precondition not provable (shift "
                       f"{unproven[0]}); exported as exact 64-bit arithmetic")
        return dyadic(g, xi, mults, shifts, "half_up", zp, fmt)
    if any(t < 2 for t in shifts):
        raise ExportError(f"requantize.{family}: TFLite shift {max(p.shift)} is TOSA RESCALE "
                          "shift 1, outside 2..62 (a real multiplier >= 2^29)")
    xc = xi
    if any(lo > xi.lo for lo in lo_b):
        xc = g.maximum(xc, _vec(g, lo_b, rank))
    if any(h < xi.hi for h in hi_b):
        xc = g.minimum(xc, _vec(g, hi_b, rank))
    assume = None
    if unproven:
        t = unproven[0]
        assume = (f"requantize.{family}: RESCALE shift {t} requires |x| < 2^{t - 1}; refq "
                  f"accepts x in [{min(lo_b)}, {max(hi_b)}] (TOSA: UNPREDICTABLE outside)")
    y = g.rescale(xc, mults, shifts, "int32", rounding=RESCALE_ROUNDING[family], assume=assume)
    y = g.clamp(y, m_lo, m_hi)
    return g.addc(y, zp) if zp else y


def double_up_reference(x: int, m: int, s: int) -> int:
    """refq's ``requantize.double_up`` scaling on Python ints (static bounds only)."""
    left, right = max(s, 0), max(-s, 0)
    y1 = ((x << left) * m + (1 << 30)) >> 31
    return (y1 + ((1 << right) >> 1)) >> right


def _double_up_at_most(m: int, s: int, bound: int, x: int) -> bool:
    return double_up_reference(x, m, s) <= bound


def _double_up_at_least(m: int, s: int, bound: int, x: int) -> bool:
    return double_up_reference(x, m, s) >= bound


def double_up(g: Graph, x: Val, p: RequantParams) -> Val:
    """``requantize.double_up`` (ruy's x86 kernels): two ties-up roundings, exactly.

    With l = max(s, 0) and r = max(-s, 0) the first rounding ⌊(x·2^l·M + 2^30)/2^31⌋ is the
    half-up rounding of x·M/2^(31-l) (2^l divides both terms), so it is the exact 64-bit
    product x·M (two MULs) rounded half up by 31 - l (refq.interop.tosa.wide); the second,
    ⌊(y1 + 2^(r-1))/2^r⌋, is ARITHMETIC_RIGHT_SHIFT with ``round`` (it adds bit r-1: half
    up), per channel. x is first clamped to the saturation points (the scaling is monotone
    in x), which bounds every intermediate; refq's own check that x·2^l fits int32 is an
    input precondition (RangeError in refq, recorded as an assumption where it can fail).
    """
    xi, m_lo, m_hi = centered_input(g, x, p)
    zp = p.out_zero_point
    rank = xi.rank
    mults, shifts = [int(v) for v in p.multiplier], [int(v) for v in p.shift]
    lo_b, hi_b = [], []
    for m, s in zip(mults, shifts, strict=True):
        if m == 0:
            lo_b.append(max(xi.lo, 0) if xi.hi >= 0 else xi.hi)
            hi_b.append(lo_b[-1])
            continue
        lo_b.append(max(_last_true(xi.lo, xi.hi, partial(_double_up_at_most, m, s, m_lo)),
                        xi.lo))
        hi_b.append(min(_first_true(xi.lo, xi.hi, partial(_double_up_at_least, m, s, m_hi)),
                        xi.hi))
    left = max(max(shifts), 0)
    if left and (xi.lo << left < -(2**31) or xi.hi << left >= 2**31):
        g.assumptions.append(f"requantize.double_up: refq requires x·2^{left} within int32 "
                             "(RangeError otherwise; the graph computes the exact value)")
    xc = xi
    if any(lo > xi.lo for lo in lo_b):
        xc = g.maximum(xc, _vec(g, lo_b, rank))
    if any(h < xi.hi for h in hi_b):
        xc = g.minimum(xc, _vec(g, hi_b, rank))
    xc = g.with_interval(xc, min(lo_b), max(hi_b))
    prod = wide.mul64(g, xc, _vec(g, mults, rank) if len(mults) > 1 else g.scalar(mults[0],
                                                                                  rank))
    firsts = [31 - max(s, 0) for s in shifts]
    y1s = [(round_int(lo * m, c, "half_up"), round_int(hi * m, c, "half_up"))
           for lo, hi, m, c in zip(lo_b, hi_b, mults, firsts, strict=True)]
    y1 = wide.round_shift(g, prod, firsts, "half_up", min(a for a, _ in y1s),
                          max(b for _, b in y1s))
    rights = [max(-s, 0) for s in shifts]
    if any(rights):
        y1 = g.ars(y1, rights[0] if len(set(rights)) == 1 else _vec(g, rights, rank),
                   round_=True)
    y = g.clamp(y1, m_lo, m_hi)
    return g.addc(y, zp) if zp else y


def requantize(g: Graph, ins: Sequence[Operand], p: RequantParams, out: IntFormat) -> Val:
    """Translation of ``requantize.<family>`` (one input ``x``, per-channel on the last axis)."""
    (x,) = ins
    if p.family == "dyadic":
        return dyadic(g, x, p.multiplier, p.shift, p.rounding or "half_even",
                      p.out_zero_point, p.out_format, p.in_zero_point)
    if p.family == "double_up":
        return double_up(g, as_i32(g, x), p)
    if p.family not in RESCALE_ROUNDING:
        raise ExportError(f"requantize.{p.family}: no TOSA translation")
    return tflite(g, as_i32(g, x), p)


def _as_wide(g: Graph, v: Value) -> Wide:
    return v if isinstance(v, Wide) else wide.from_i32(g, v)


def _branch(g: Graph, x0: Operand, mult: int, shift: int, rounding: str, zp: int) -> Value:
    """round((x - zp)·mult / 2^shift), unsaturated: int32 where its interval fits, else a
    64-bit value (refq computes the branches in int64)."""
    x = g.addc(as_i32(g, x0), -zp) if zp else as_i32(g, x0)
    if mult >= 1 << 31:
        raise ExportError("add.ivit: multiplier 2^31 has no int32 encoding")
    lo = min(round_int(x.lo * mult, shift, rounding), round_int(x.hi * mult, shift, rounding))
    hi = max(round_int(x.lo * mult, shift, rounding), round_int(x.hi * mult, shift, rounding))
    flo = min(x.lo * mult, x.hi * mult) >> shift
    if fits(min(lo, flo) - 1, hi + 1, "int32"):
        fast = nearest(g, x, [mult], [shift], rounding, [(x.lo, x.hi)])
        if fast is not None:
            return fast
    prod = wide.mul64(g, x, g.scalar(mult, x.rank))
    if fits(min(lo, flo), hi, "int32"):
        return wide.round_shift(g, prod, shift, rounding, lo, hi, floor_lo=flo)
    return wide.round_shift_wide(g, prod, shift, rounding)


def add(g: Graph, ins: Sequence[Operand], p: AddParams, out: IntFormat) -> Val:
    """``add.ivit``: two dyadic branches (each unsaturated, int32), summed, + zp, saturated;
    ``add.shared_shift``: the exact 64-bit sum of both products, one rounding, saturated."""
    a, b = ins
    fmt = p.out_format
    if p.scheme == "ivit":
        ya = _branch(g, a, p.a_multiplier, p.a_shift, p.rounding, p.a_zero_point)
        yb = _branch(g, b, p.b_multiplier, p.b_shift, p.rounding, p.b_zero_point)
        if isinstance(ya, Val) and isinstance(yb, Val) and fits(
                ya.lo + yb.lo + p.out_zero_point, ya.hi + yb.hi + p.out_zero_point, "int32"):
            y = g.add(ya, yb)
            y = g.addc(y, p.out_zero_point) if p.out_zero_point else y
            return g.clamp(y, fmt.min, fmt.max)
        w = wide.add(g, _as_wide(g, ya), _as_wide(g, yb))
        if p.out_zero_point:
            w = wide.add(g, w, wide.const(g, p.out_zero_point, w.lo.rank))
        return wide.saturate_i32(g, w, fmt.min, fmt.max)
    if p.a_multiplier >= 1 << 31 or p.b_multiplier >= 1 << 31:
        raise ExportError("add.shared_shift: multiplier 2^31 has no int32 encoding")
    ai = g.addc(as_i32(g, a), -p.a_zero_point)
    bi = g.addc(as_i32(g, b), -p.b_zero_point)
    pa = wide.mul64(g, ai, g.scalar(p.a_multiplier, ai.rank))
    pb = wide.mul64(g, bi, g.scalar(p.b_multiplier, bi.rank))
    acc = wide.add(g, pa, pb)
    lim = 1 << (p.acc_bits - 1)
    if acc.vlo < -lim or acc.vhi >= lim:
        g.assumptions.append(f"add.shared_shift: accumulator within int{p.acc_bits} "
                             "(refq-checked)")
        acc = Wide(acc.hi, acc.lo, max(acc.vlo, -lim), min(acc.vhi, lim - 1))
    r = dyadic(g, acc, [1], [p.a_shift], p.rounding, p.out_zero_point, fmt)
    return r


__all__ = ["RESCALE_ROUNDING", "add", "dyadic", "nearest", "requantize", "tflite",
           "tflite_reference"]
