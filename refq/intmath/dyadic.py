"""Dyadic requantization (I-ViT / HAWQ): x · b / 2^c with a named rounding."""

from __future__ import annotations

from typing import Any

import numpy as np

from refq.errors import RangeError, SpecError
from refq.intmath.arrays import IntArray, as_int64, first_index
from refq.intmath.rounding import Rounding, round_shift


def dyadic_requantize(x: Any, b: Any, c: Any, rounding: Rounding = "half_even") -> IntArray:
    """round(x · b / 2^c) exactly, for int64 ``x``, ``b`` >= 0 and ``c`` in 0..63.

    Intermediate: the product x · b, which must fit int64 (|x · b| < 2^63) — checked, and a
    RangeError names the first element where it does not. Rounding: the named rounding of the
    exact quotient (I-ViT's torch.round: ``half_even``; TVM's requantize: ``half_up``;
    HAWQ's floor: ``floor``). No saturation: callers clamp to the output format.
    """
    xa = as_int64(x, "x")
    ba = as_int64(b, "b")
    ca = as_int64(c, "c")
    if ba.size and int(ba.min()) < 0:
        raise SpecError(f"dyadic_requantize: multiplier b must be >= 0, got {int(ba.min())}")
    if ca.size and (int(ca.min()) < 0 or int(ca.max()) > 63):
        raise SpecError("dyadic_requantize: shift c must lie in 0..63")
    fast = _dyadic_fast(xa, ba, ca, rounding)
    if fast is not None:
        return fast
    xa, ba, ca = np.broadcast_arrays(xa, ba, ca)
    # |x·b| < 2^63  ⇔  |x| <= (2^63 - 1) // b  for b > 0.
    limit = np.iinfo(np.int64).max // np.maximum(ba, 1)
    i64 = np.iinfo(np.int64)
    over = (np.abs(np.maximum(xa, -i64.max)) > limit) | ((xa == i64.min) & (ba > 1))
    if bool(over.any()):
        idx = first_index(np.asarray(over))
        raise RangeError(
            f"dyadic_requantize: x·b overflows int64 at index {idx} "
            f"(x={int(xa[idx])}, b={int(ba[idx])})"
        )
    return round_shift(xa * ba, ca, rounding)


def _dyadic_fast(xa: IntArray, ba: IntArray, ca: IntArray, rounding: Rounding) -> IntArray | None:
    """round(x·b/2^c) with one shared shift and one bound check, or None (general path).

    Per-channel shifts are first brought to the largest one, b' = b·2^(cmax - c): the
    quotient x·b'/2^cmax is the same rational number as x·b/2^c, so every rounding gives
    the same integer. Taken when every b' fits int64 (max b < 2^31 and cmax - cmin <= 31)
    and max|x|·max b' < 2^63, which proves that no product x·b' overflows — one min and
    one max reduction instead of an element-wise check. The product is one int64 buffer,
    rounded by :func:`refq.intmath.rounding.round_shift` with a scalar shift.
    """
    if xa.size == 0 or ba.size == 0 or ca.size == 0 or ba.size > xa.size or ca.size > xa.size:
        return None
    bmax = int(ba.max())
    cmin, cmax = int(ca.min()), int(ca.max())
    if bmax >= 1 << 31 or cmax - cmin > 31:
        return None
    if cmin == cmax:
        bb = ba
    else:
        bb = ba << (np.int64(cmax) - ca)
        bmax = int(bb.max())
    xmax = max(-int(xa.min()), int(xa.max()))
    if xmax * bmax >= 1 << 63:
        return None
    y = np.multiply(xa, bb)
    return round_shift(y, cmax, rounding)


__all__ = ["dyadic_requantize"]
