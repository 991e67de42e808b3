"""Carrier dtypes: the NumPy dtype that holds a program tensor inside the interpreter.

A tensor declared in an IntFormat is held in the narrowest of int8, uint8, int16, uint16,
int32, uint32 and int64 whose range contains the format's (int20 → int32, uint9 → uint16,
uint8 → uint8); a format no narrower dtype holds is carried in int64. Values enter a
carrier only after they were checked or proven to lie in the tensor's format, so the
conversion is exact. :func:`refq.program.run` returns int64 arrays whatever the carrier.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from refq.intmath import IntArray, IntFormat

_CARRIERS = tuple(
    np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32)
)
INT64 = np.dtype(np.int64)


@lru_cache(maxsize=256)
def carrier(fmt: IntFormat) -> np.dtype[Any]:
    """The narrowest carrier dtype holding every value of ``fmt`` (int64 otherwise)."""
    for dt in _CARRIERS:
        lo, hi = dtype_range(dt)
        if lo <= fmt.min and fmt.max <= hi:
            return dt
    return INT64


def within(lo: int, hi: int, fmt: IntFormat) -> bool:
    """Whether the interval [lo, hi] lies inside ``fmt``."""
    return fmt.min <= lo and hi <= fmt.max


def dtype_range(dt: np.dtype[Any]) -> tuple[int, int]:
    """(min, max) of an integer dtype."""
    info = np.iinfo(dt.type)
    return int(info.min), int(info.max)


def to_carrier(arr: npt.NDArray[np.integer[Any]], dt: np.dtype[Any]) -> Any:
    """``arr`` in dtype ``dt`` (itself when it already is), for values known to fit."""
    return arr if arr.dtype == dt else arr.astype(dt)


def widen(arr: npt.NDArray[np.integer[Any]]) -> IntArray:
    """``arr`` as int64 (itself when it already is)."""
    if arr.dtype == INT64:
        return cast(IntArray, arr)
    return arr.astype(np.int64)


__all__ = ["INT64", "carrier", "dtype_range", "to_carrier", "widen", "within"]
