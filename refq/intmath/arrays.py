"""Validation of integer array arguments.

Every public intmath function takes its integer operands through :func:`as_int64`, so a
float, bool, object or out-of-int64 array is rejected with a SpecError naming the argument
instead of being silently converted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError

IntArray = npt.NDArray[np.int64]
"""An int64 NumPy array: the carrier of every integer tensor in refq."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def as_int64(x: Any, name: str) -> IntArray:
    """Return ``x`` as an int64 array, or raise SpecError naming ``name``.

    Accepts Python ints, NumPy integer scalars and arrays of any signed or unsigned integer
    dtype whose values fit int64. Rejects bool, float, complex, object and string data.
    """
    if isinstance(x, (bool, np.bool_)):
        raise SpecError(f"{name}: expected an integer array, got a bool")
    if isinstance(x, int):
        if not _INT64_MIN <= x <= _INT64_MAX:
            raise SpecError(f"{name}: integer {x} does not fit int64")
        return np.asarray(x, dtype=np.int64)
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind == "b":
        raise SpecError(f"{name}: expected an integer array, got dtype bool")
    if kind not in "iu":
        raise SpecError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    if kind == "u" and arr.dtype.itemsize == 8 and arr.size and int(arr.max()) > _INT64_MAX:
        raise SpecError(f"{name}: uint64 value {int(arr.max())} does not fit int64")
    return arr.astype(np.int64, copy=False)


def as_int(x: Any, name: str) -> int:
    """Return a Python int from an integer scalar, or raise SpecError naming ``name``."""
    if isinstance(x, (bool, np.bool_)):
        raise SpecError(f"{name}: expected an integer, got a bool")
    if isinstance(x, (int, np.integer)):
        return int(x)
    raise SpecError(f"{name}: expected an integer, got {type(x).__name__}")


def first_index(mask: npt.NDArray[np.bool_]) -> tuple[int, ...]:
    """Index (as a tuple) of the first True element of ``mask`` in C order."""
    flat = int(np.flatnonzero(mask.ravel())[0])
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


__all__ = ["IntArray", "as_int", "as_int64", "first_index"]
