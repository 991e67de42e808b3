"""Named integer rounding: right shifts and divisions, exact for every int64 input.

The six roundings (DESIGN.md, numeric contract 2):

=============  ==============================================  ===========================
name           result for a real quotient q                    used by
=============  ==============================================  ===========================
``floor``      ⌊q⌋ (arithmetic right shift)                    I-BERT/I-ViT ``floor``
``ceil``       ⌈q⌉
``trunc``      toward zero (C integer division)                gemmlowp SRDHM division
``half_up``    ⌊q + 1/2⌋ (ties toward +∞)                      TVM, TFLite single rounding
``half_away``  ties away from zero                             TFLite / gemmlowp, std::round
``half_even``  ties to the even neighbour (banker's)           ONNX, torch.round, NumPy
=============  ==============================================  ===========================

Both helpers compute the floor quotient and the remainder in int64 and decide the rounding by
comparing the remainder with the divisor, so no intermediate exceeds the input's magnitude:
they are exact for every int64 input and every shift in 0..63 / divisor ≠ 0.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from refq.errors import RangeError, SpecError
from refq.intmath.arrays import IntArray, as_int64

Rounding = Literal["half_even", "half_away", "half_up", "floor", "ceil", "trunc"]
ROUNDINGS: tuple[Rounding, ...] = get_args(Rounding)


def check_rounding(rounding: Any, name: str = "rounding") -> Rounding:
    """Return ``rounding`` if it is one of :data:`ROUNDINGS`, else raise SpecError."""
    if rounding not in ROUNDINGS:
        raise SpecError(f"{name}: unknown rounding {rounding!r}; expected one of {ROUNDINGS}")
    return rounding  # type: ignore[no-any-return]


def round_shift(x: Any, shift: Any, rounding: Rounding) -> IntArray:
    """x / 2^shift rounded by ``rounding``, for int64 ``x`` and shifts 0..63.

    Formats: ``x`` any int64; ``shift`` a non-negative int or int array broadcastable to
    ``x``. Intermediates: floor quotient ``x >> shift`` and remainder ``x & (2^shift - 1)``,
    both within int64; the result is within int64 for every input. Negative shifts raise
    SpecError (a left shift is not a rounding).
    """
    rounding = check_rounding(rounding)
    xa = as_int64(x, "x")
    sa = as_int64(shift, "shift")
    if sa.size and int(sa.min()) < 0:
        raise SpecError(f"round_shift: shift must be >= 0, got {int(sa.min())}")
    if sa.size and int(sa.max()) > 63:
        raise SpecError(f"round_shift: shift must be <= 63, got {int(sa.max())}")
    if rounding in ("half_up", "half_even") and xa.size:
        fast = _round_shift_nearest(xa, sa, rounding)
        if fast is not None:
            return fast
    xa, sa = np.broadcast_arrays(xa, sa)
    q = xa >> sa
    if rounding == "floor":
        return np.asarray(q, dtype=np.int64)
    one = np.int64(1)
    mask = np.int64(2**63 - 1) >> (np.int64(63) - sa)  # 2^shift - 1, no overflow at 63
    r = xa & mask
    # other = 2^shift - r, written mask - (r - 1) so that shift = 63 stays in int64; where
    # r == 0 the value is irrelevant (no rounding step), so r is taken as 1 there.
    other = mask - (np.maximum(r, one) - one)
    return _round_up_from_floor(q, r, other, xa < 0, rounding)


def _round_shift_nearest(xa: IntArray, sa: IntArray, rounding: Rounding) -> IntArray | None:
    """Fast path of round_shift for half_up / half_even with shifts 0..62: the floor of
    (x + h) / 2^s with h = 2^s >> 1 is round-half-up (ties toward +inf; h = 0 at s = 0);
    half_even then steps the odd results of exact ties down by one. Taken only when
    x + h provably fits int64 (max(x) < 2^63 - max h); None otherwise, and the general
    path decides."""
    smax = int(sa.max()) if sa.ndim else int(sa)
    if smax > 62:
        return None
    if int(xa.max()) >= 2**63 - ((1 << smax) >> 1):
        return None
    half = (np.int64(1) << sa) >> np.int64(1)
    q = (xa + half) >> sa
    if rounding == "half_even":
        mask = (np.int64(1) << sa) - np.int64(1)
        tie = ((xa & mask) == half) & (sa > 0)
        q = q - (tie & ((q & 1) == 1))
    return np.asarray(q, dtype=np.int64)


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


def round_div(a: Any, b: Any, rounding: Rounding) -> IntArray:
    """a / b rounded by ``rounding``, exactly, for int64 ``a`` and non-zero int64 ``b``.

    A negative divisor is handled by negating both operands; ``a = -2^63`` with a negative
    divisor (whose negation does not fit int64) raises RangeError, as does a zero divisor.
    Intermediates: the floor quotient and a remainder in [0, |b|), both within int64.
    """
    rounding = check_rounding(rounding)
    aa = as_int64(a, "a")
    ba = as_int64(b, "b")
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


__all__ = ["ROUNDINGS", "Rounding", "check_rounding", "round_div", "round_shift"]
