"""Storage of integer tensors of a declared IntFormat: dtype choice and range checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError
from refq.intmath import IntFormat


def storage_dtype(fmt: IntFormat) -> np.dtype[np.integer[Any]]:
    """The narrowest NumPy dtype that holds every value of ``fmt``."""
    for bits in (8, 16, 32, 64):
        if fmt.bits <= bits:
            return np.dtype(f"{'int' if fmt.signed else 'uint'}{bits}")
    raise GoldenError(f"no storage dtype for {fmt}")  # unreachable: bits <= 64


def to_storage(array: npt.ArrayLike, fmt: IntFormat, name: str) -> npt.NDArray[np.integer[Any]]:
    """``array`` in its storage dtype, after checking every value lies in ``fmt``."""
    arr = np.asarray(array)
    if arr.dtype.kind not in "iu":
        raise GoldenError(f"tensor {name!r}: expected integers, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < fmt.min or int(arr.max()) > fmt.max):
        raise GoldenError(
            f"tensor {name!r}: values [{int(arr.min())}, {int(arr.max())}] outside {fmt}"
        )
    return arr.astype(storage_dtype(fmt))


__all__ = ["storage_dtype", "to_storage"]
