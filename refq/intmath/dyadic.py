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


__all__ = ["dyadic_requantize"]
