"""Named integer rounding: right shifts and divisions, exact for every int64 input.

The six roundings (DESIGN.md, numeric contract 2):

=============  ==============================================  ===========================
name           result for a real quotient q                    used by
=============  ==============================================  ===========================
``floor``      ⌊q⌋ (arithmetic right shift)                    I-BERT/I-ViT ``floor``
``ceil``       ⌈q⌉
``trunc``      toward zero (C integer division)                gemmlowp SRDHM division
``half_up``    ⌊q + 1/2⌋ (ties toward +∞)                      TVM, TFLite single, SRDHM
``half_away``  ties away from zero                             RoundingDivideByPOT, round
``half_even``  ties to the even neighbour (banker's)           ONNX, torch.round, NumPy
=============  ==============================================  ===========================

The general paths compute the floor quotient and the remainder in int64 and decide the
rounding by comparing the remainder with the divisor, so no intermediate exceeds the input's
magnitude: they are exact for every int64 input and every shift in 0..63 / divisor ≠ 0.

Fast paths (same results, bit for bit; each taken only where its bound is proven, else the
general path decides):

- ``round_shift``: one nudge then one arithmetic shift, ⌊(x + n) / 2^s⌋, with the nudge n
  chosen per rounding (half_up 2^(s-1); half_even 2^(s-1) - 1 + (⌊x/2^s⌋ mod 2); half_away
  2^(s-1) - [x < 0]; ceil 2^s - 1; trunc (2^s - 1)·[x < 0]); taken when max(x) + n fits int64.
- ``round_div`` / :func:`round_div_shifted` with a divisor that is shared along some axes (a
  scalar or a per-row divisor, e.g. shape (..., 1); for round_div all positive or all
  negative, the latter as (-a)/(-b)): one exact reciprocal R = ⌊2^(P+sh)/b⌋ per
  divisor, the estimate w = a·R (+ 2^(P-1) for the nearest roundings) and z = ⌊w/2^P⌋.
  |a·2^(P+sh)/b - a·R| < |a| <= A, so z is the exact answer wherever the low P bits of w are
  at least A away from a multiple of 2^P; the few elements closer than that (ties and exact
  quotients among them) are recomputed exactly. P is chosen so that |w| < 2^62. For floor,
  half_up and ceil with 4·b·(A + 1) <= 2^P (small divisors) a per-divisor nudge replaces the
  check: a/b lies on the grid (1/b)Z, so a nudge between the error and the grid step decides
  every element (see the comment in ``_grouped_round_div``).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from refq.errors import RangeError, SpecError
from refq.intmath.arrays import IntArray, as_int64

Rounding = Literal["half_even", "half_away", "half_up", "floor", "ceil", "trunc"]
ROUNDINGS: tuple[Rounding, ...] = get_args(Rounding)
_NEAREST = ("half_up", "half_even", "half_away")
_I64_MAX = 2**63 - 1
_I64_MIN = -(2**63)


def check_rounding(rounding: Any, name: str = "rounding") -> Rounding:
    """Return ``rounding`` if it is one of :data:`ROUNDINGS`, else raise SpecError."""
    if rounding not in ROUNDINGS:
        raise SpecError(f"{name}: unknown rounding {rounding!r}; expected one of {ROUNDINGS}")
    return rounding  # type: ignore[no-any-return]


def _shift_arg(shift: Any, name: str, fn: str) -> IntArray:
    sa = as_int64(shift, name)
    if sa.size:
        lo, hi = int(sa.min()), int(sa.max())
        if lo < 0:
            raise SpecError(f"{fn}: {name} must be >= 0, got {lo}")
        if hi > 63:
            raise SpecError(f"{fn}: {name} must be <= 63, got {hi}")
    return sa


def round_shift(x: Any, shift: Any, rounding: Rounding) -> IntArray:
    """x / 2^shift rounded by ``rounding``, for int64 ``x`` and shifts 0..63.

    Formats: ``x`` any int64; ``shift`` a non-negative int or int array broadcastable to
    ``x``. Intermediates: floor quotient ``x >> shift`` and remainder ``x & (2^shift - 1)``,
    both within int64 (fast path: x plus a nudge below 2^shift, taken only where it fits
    int64); the result is within int64 for every input. Negative shifts raise SpecError (a
    left shift is not a rounding).
    """
    rounding = check_rounding(rounding)
    xa = as_int64(x, "x")
    sa = _shift_arg(shift, "shift", "round_shift")
    if xa.size and sa.size:
        fast = _round_shift_fast(xa, sa, rounding)
        if fast is not None:
            return fast
    xa, sa = np.broadcast_arrays(xa, sa)
    q = xa >> sa
    if rounding == "floor":
        return np.asarray(q, dtype=np.int64)
    one = np.int64(1)
    mask = np.int64(_I64_MAX) >> (np.int64(63) - sa)  # 2^shift - 1, no overflow at 63
    r = xa & mask
    # other = 2^shift - r, written mask - (r - 1) so that shift = 63 stays in int64; where
    # r == 0 the value is irrelevant (no rounding step), so r is taken as 1 there.
    other = mask - (np.maximum(r, one) - one)
    return _round_up_from_floor(q, r, other, xa < 0, rounding)


def _round_shift_fast(xa: IntArray, sa: IntArray, rounding: Rounding) -> IntArray | None:
    """⌊(x + nudge) / 2^s⌋ (module docstring), or None where x + nudge may leave int64.

    The nudge is below 2^s; the half_* nudges are below 2^(s-1) + 1 and 0 at s = 0. All
    arithmetic is in place on one int64 buffer of the result's shape.
    """
    scalar = sa.ndim == 0
    smax = int(sa) if scalar else int(sa.max())
    if smax == 0:
        return np.array(np.broadcast_to(xa, np.broadcast_shapes(xa.shape, sa.shape)))
    if rounding == "floor":
        return np.asarray(xa >> sa, dtype=np.int64)
    if rounding == "trunc":
        mask = (1 << smax) - 1 if scalar else np.int64(_I64_MAX) >> (np.int64(63) - sa)
        t = np.bitwise_and(xa >> np.int64(63), mask)
        t += xa
        t >>= sa
        return np.asarray(t, dtype=np.int64)
    if smax > 62:
        return None
    top = (1 << smax) - 1 if rounding == "ceil" else 1 << (smax - 1)
    if int(xa.max()) > _I64_MAX - top:
        return None
    if scalar:
        s = smax
        h = 1 << (s - 1)
        if rounding == "ceil":
            t = xa + np.int64((1 << s) - 1)
        elif rounding == "half_up":
            t = xa + np.int64(h)
        elif rounding == "half_away":
            t = xa + np.int64(h)
            t += xa >> np.int64(63)  # -1 where x < 0; x + h - 1 >= -2^63 as h >= 1
        else:  # half_even
            t = xa >> np.int64(s)
            t &= np.int64(1)
            t += xa
            t += np.int64(h - 1)
        t >>= np.int64(s)
        return np.asarray(t, dtype=np.int64)
    one = np.int64(1)
    full = (one << sa) - one  # 2^s - 1 (s <= 62 here)
    half = (full >> one) + (sa > 0)  # 2^(s-1), 0 at s = 0
    if rounding == "ceil":
        t = xa + full
    elif rounding == "half_up":
        t = xa + half
    elif rounding == "half_away":
        t = xa + half
        t -= np.bitwise_and(xa >> np.int64(63), (sa > 0).astype(np.int64))
    else:  # half_even: x + 2^(s-1) - 1 + parity of ⌊x/2^s⌋, and x itself at s = 0
        t = xa + (full >> one)
        t += np.bitwise_and(xa >> sa, (sa > 0).astype(np.int64))
    t >>= sa
    return np.asarray(t, dtype=np.int64)


def _round_up_from_floor(
    q: IntArray, r: IntArray, other: IntArray, neg: npt.NDArray[np.bool_], rounding: Rounding
) -> IntArray:
    """Round the floor quotient ``q`` of an exact quotient with remainder ``r`` >= 0.

    ``other`` is divisor - r (so ``r > other`` means "above one half" and ``r == other`` a
    tie, with no overflow); ``neg`` marks negative exact quotients (trunc, half_away).
    """
    nonzero = r != 0
    if rounding == "ceil":
        out = q + nonzero
    elif rounding == "trunc":
        out = q + (nonzero & neg)
    else:
        above = nonzero & (r > other)
        tie = nonzero & (r == other)
        if rounding == "half_up":
            out = q + (above | tie)
        elif rounding == "half_away":
            out = q + (above | (tie & ~neg))
        else:
            out = q + (above | (tie & ((q & 1) == 1)))
    return np.asarray(out, dtype=np.int64)


def _round_div_nearest(aa: IntArray, ba: IntArray, rounding: Rounding) -> IntArray | None:
    """Fast path of round_div for half_up / half_even with positive divisors: q = ⌊(2a + b) /
    2b⌋ is round-half-up; an exact tie leaves remainder 0, and half_even then steps odd q
    down by one. Taken only when |a|, b < 2^61 (so 2a + b and 2b fit int64)."""
    lim = 1 << 61
    if int(ba.min()) <= 0 or int(ba.max()) >= lim:
        return None
    if int(aa.max()) >= lim or int(aa.min()) <= -lim:
        return None
    num = 2 * aa + ba
    den = 2 * ba
    q = num // den
    if rounding == "half_even":
        tie = (num - q * den) == 0
        q = q - (tie & ((q & 1) == 1))
    return np.asarray(q, dtype=np.int64)


def _py_round_div(n: int, d: int, rounding: Rounding) -> int:
    """n / d (d > 0) rounded by ``rounding``, on Python ints (exact, unbounded)."""
    q, r = divmod(n, d)
    if r == 0 or rounding == "floor":
        return q
    if rounding == "ceil":
        return q + 1
    if rounding == "trunc":
        return q + (1 if n < 0 else 0)
    twice = 2 * r
    if twice != d:
        return q + (1 if twice > d else 0)
    if rounding == "half_up":
        return q + 1
    if rounding == "half_away":
        return q + (0 if n < 0 else 1)
    return q + (q & 1)  # half_even


def _grouped_round_div(
    aa: IntArray, sh: IntArray, ba: IntArray, rounding: Rounding
) -> IntArray | None:
    """a·2^sh / b rounded, for positive b and shifts sh that broadcast to ``aa`` without
    enlarging it, by the reciprocal method of the module docstring; None where its bounds
    fail (then the caller's general path decides)."""
    amin, amax = int(aa.min()), int(aa.max())
    big = max(-amin, amax)  # A: bound on |a|
    if big == 0:
        return np.zeros(aa.shape, dtype=np.int64)
    shmax = int(sh.max())
    bmin = int(ba.min())
    qbound = ((big << shmax) // bmin) + 1  # |a·2^sh/b| < qbound
    p = 61 - qbound.bit_length()  # |a·R| <= |a·2^(P+sh)/b| < qbound·2^P <= 2^61
    if shmax + p > 62 and 62 - shmax >= big.bit_length() + 8:
        p = 62 - shmax  # 2^(P+sh) in int64: vectorized reciprocals, <= 2^-7 ambiguous
    if p < 2 or 4 * big > (1 << p):
        return None
    if shmax + p <= 62:
        recip = (np.int64(1) << (sh + np.int64(p))) // ba
    else:
        shb, bb = np.broadcast_arrays(sh, ba)
        recip = np.array(
            [
                (1 << (s + p)) // b
                for s, b in zip(shb.ravel().tolist(), bb.ravel().tolist(), strict=True)
            ],
            dtype=np.int64,
        ).reshape(shb.shape)
    w = aa * recip
    bmax = int(ba.max())
    if rounding in ("floor", "half_up", "ceil") and 4 * bmax * (big + 1) <= (1 << p):
        # a/b has fractional part in (1/b)Z: floor(x + e) = floor(x) for 0 <= e < 1/b (and
        # likewise at x + 1/2 in (1/2b)Z, x + 1 - e for 0 < e <= 1/b), so a nudge of about
        # 2^P/4b (half_up: + 2^(P-1); ceil: 2^P - ⌊2^(P-1)/b⌋) outweighs the error |a|/2^P
        # < 1/4b and no element is ambiguous.
        if rounding == "floor":
            off = (np.int64(1 << (p - 2))) // ba
        elif rounding == "half_up":
            off = np.int64(1 << (p - 1)) + (np.int64(1 << (p - 2))) // ba
        else:
            off = np.int64(1 << p) - (np.int64(1 << (p - 1))) // ba
        w += off
        w >>= np.int64(p)
        return np.asarray(w, dtype=np.int64)
    if rounding in _NEAREST:
        w += np.int64(1 << (p - 1))
    z = w >> np.int64(p)
    # ambiguous: the low P bits of w within A of a multiple of 2^P
    w += np.int64(big)
    w &= np.int64((1 << p) - 1)
    amb = w < np.int64(2 * big)
    if rounding == "ceil":
        z += np.int64(1)
    elif rounding == "trunc":
        z += aa < 0
    if bool(amb.any()):
        idx = np.nonzero(amb)
        a_s = aa[idx]
        s_s = np.broadcast_to(sh, aa.shape)[idx]
        b_s = np.broadcast_to(ba, aa.shape)[idx]
        if shmax < 62 and big < (1 << (62 - shmax)):  # a << sh fits: exact, vectorized
            z[idx] = _round_div_general(a_s << s_s, b_s, rounding)
        else:
            z[idx] = np.array(
                [
                    _py_round_div(a << s, b, rounding)
                    for a, s, b in zip(a_s.tolist(), s_s.tolist(), b_s.tolist(), strict=True)
                ],
                dtype=np.int64,
            )
    return np.asarray(z, dtype=np.int64)


def _is_grouped(aa: IntArray, ba: IntArray) -> bool:
    """True when ``ba`` broadcasts to ``aa``'s shape with fewer elements (a shared divisor)."""
    if ba.ndim > aa.ndim or not aa.size or not ba.size or 2 * ba.size > aa.size:
        return False
    return all(d in (1, e) for d, e in zip(ba.shape[::-1], aa.shape[::-1], strict=False))


def round_div(a: Any, b: Any, rounding: Rounding) -> IntArray:
    """a / b rounded by ``rounding``, exactly, for int64 ``a`` and non-zero int64 ``b``.

    A negative divisor is handled by negating both operands; ``a = -2^63`` with a negative
    divisor (whose negation does not fit int64) raises RangeError, as does a zero divisor.
    Intermediates: the floor quotient and a remainder in [0, |b|), both within int64 (fast
    path for a positive divisor shared along axes: an exact per-divisor reciprocal, module
    docstring).
    """
    rounding = check_rounding(rounding)
    aa = as_int64(a, "a")
    ba = as_int64(b, "b")
    if _is_grouped(aa, ba):
        bmin, bmax = int(ba.min()), int(ba.max())
        fast = None
        if bmin > 0:
            fast = _grouped_round_div(aa, np.zeros((), dtype=np.int64), ba, rounding)
        elif bmax < 0 and bmin > _I64_MIN and int(aa.min()) > _I64_MIN:
            # a / b = (-a) / (-b): the same rational, hence the same rounding
            fast = _grouped_round_div(-aa, np.zeros((), dtype=np.int64), -ba, rounding)
        if fast is not None:
            return fast
    return _round_div_general(aa, ba, rounding)


def _round_div_general(aa: IntArray, ba: IntArray, rounding: Rounding) -> IntArray:
    aa, ba = np.broadcast_arrays(aa, ba)
    if bool((ba == 0).any()):
        raise RangeError("round_div: division by zero in divisor 'b'")
    neg_b = ba < 0
    if bool(neg_b.any()):
        if bool((neg_b & ((aa == np.iinfo(np.int64).min) | (ba == np.iinfo(np.int64).min))).any()):
            raise RangeError("round_div: negating -2^63 for a negative divisor overflows int64")
        aa = np.where(neg_b, -aa, aa)
        ba = np.where(neg_b, -ba, ba)
    if rounding in ("half_up", "half_even") and aa.size:
        fast = _round_div_nearest(aa, ba, rounding)
        if fast is not None:
            return fast
    q = aa // ba
    r = aa - q * ba  # exact modulo 2^64 and 0 <= r < b, so exact
    if rounding == "floor":
        return np.asarray(q, dtype=np.int64)
    return _round_up_from_floor(q, r, ba - r, aa < 0, rounding)


def round_div_shifted(a: Any, shift: Any, b: Any, rounding: Rounding) -> IntArray:
    """a·2^shift / b rounded by ``rounding``, exactly: ``round_div(a << shift, b)`` without
    forming ``a << shift``.

    Formats: ``a`` int64; ``shift`` an int or int array in 0..63 broadcastable to ``a``;
    ``b`` a positive int or int array broadcastable to ``a``. The result must fit int64
    (RangeError otherwise); ``a·2^shift`` itself need not. Intermediates: per divisor the
    exact reciprocal ⌊2^(P+shift)/b⌋ (< 2^61) and a·R (< 2^62) — module docstring — or, on
    the general path, the exact product on Python ints. A non-positive divisor raises
    RangeError.
    """
    rounding = check_rounding(rounding)
    aa = as_int64(a, "a")
    sa = _shift_arg(shift, "shift", "round_div_shifted")
    ba = as_int64(b, "b")
    if ba.size and int(ba.min()) <= 0:
        raise RangeError(f"round_div_shifted: divisor 'b' must be > 0, got {int(ba.min())}")
    if not aa.size or not sa.size or not ba.size:
        shape = np.broadcast_shapes(aa.shape, sa.shape, ba.shape)
        return np.zeros(shape, dtype=np.int64)
    g = np.broadcast_shapes(sa.shape, ba.shape)
    if _is_grouped(aa, np.broadcast_to(ba, g)):
        fast = _grouped_round_div(aa, sa, ba, rounding)
        if fast is not None:
            return fast
    smax = int(sa.max())
    if max(-int(aa.min()), int(aa.max())) < (1 << (62 - smax)) if smax < 62 else not aa.any():
        return _round_div_general(aa << sa, ba, rounding)
    av, sv, bv = np.broadcast_arrays(aa, sa, ba)
    exact = [
        _py_round_div(x << s, d, rounding)
        for x, s, d in zip(
            av.ravel().tolist(), sv.ravel().tolist(), bv.ravel().tolist(), strict=True
        )
    ]
    if exact and not _I64_MIN <= min(exact) <= max(exact) <= _I64_MAX:
        raise RangeError("round_div_shifted: the rounded quotient does not fit int64")
    return np.array(exact, dtype=np.int64).reshape(av.shape)


__all__ = [
    "ROUNDINGS",
    "Rounding",
    "check_rounding",
    "round_div",
    "round_div_shifted",
    "round_shift",
]
