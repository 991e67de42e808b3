"""Exact integer square root and integer base-2 logarithms, vectorized, integers only."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from refq.errors import SpecError
from refq.intmath.arrays import IntArray, as_int64


def ilog2(n: Any, rounding: Literal["floor", "nearest"] = "floor") -> IntArray:
    """Integer log2 of positive int64 ``n``.

    ``floor``: ⌊log2 n⌋ = bit_length(n) - 1, by a binary search over shifts.
    ``nearest``: the integer nearest to log2 n. log2 n is never a half-integer for integer n
    (√2 is irrational), so there are no ties: round up exactly when n > ⌊2^k·√2⌋ with
    k = ⌊log2 n⌋, where ⌊2^k·√2⌋ = isqrt(2^(2k+1)) is a table of exact integer constants.
    """
    na = as_int64(n, "n")
    if na.size and int(na.min()) < 1:
        raise SpecError(f"ilog2: n must be >= 1, got {int(na.min())}")
    k = np.zeros(na.shape, dtype=np.int64)
    v = na.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= (np.int64(1) << s)
        v = np.where(big, v >> s, v)
        k = k + np.where(big, s, 0)
    if rounding == "floor":
        return k
    if rounding == "nearest":
        return k + (na > _SQRT2_FLOORS[k])
    raise SpecError(f"ilog2: rounding must be 'floor' or 'nearest', got {rounding!r}")


# ⌊2^k · √2⌋ for k = 0..62, exact (Python's math.isqrt on integers).
_SQRT2_FLOORS = np.array([math.isqrt(2 ** (2 * k + 1)) for k in range(63)], dtype=np.int64)


def isqrt(n: Any) -> IntArray:
    """⌊√n⌋ exactly for every 0 <= n < 2^63, vectorized.

    Newton's iteration x ← ⌊(x + ⌊n/x⌋) / 2⌋ from x0 = 2^⌈bits(n)/2⌉ >= √n decreases
    monotonically to ⌊√n⌋ (the standard integer Newton argument); it stops when an iterate
    no longer decreases. All intermediates are below 2^33 except n itself. At most 7 rounds
    are needed for 63-bit inputs; the loop runs until every element has converged.
    """
    na = as_int64(n, "n")
    if na.size and int(na.min()) < 0:
        raise SpecError(f"isqrt: n must be >= 0, got {int(na.min())}")
    m = np.maximum(na, 1)  # isqrt(0) = 0 is patched in below; keeps x >= 1
    x = np.int64(1) << ((ilog2(m) + 2) >> 1)
    while True:
        y = (x + m // x) >> 1
        done = y >= x
        if bool(done.all()):
            break
        x = np.where(done, x, y)
    return np.asarray(np.where(na == 0, np.int64(0), x), dtype=np.int64)


__all__ = ["ilog2", "isqrt"]
