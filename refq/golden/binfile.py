"""Raw little-endian binary: the tensor's storage dtype (int8/16/32/64 or unsigned), C order,
no header — shape and format are in the case's meta.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError
from refq.files.safe import read_bytes
from refq.golden.tensorfmt import storage_dtype, to_storage
from refq.intmath import IntFormat


def write_bin(path: Path, values: npt.NDArray[np.integer[Any]], fmt: IntFormat) -> None:
    dtype = storage_dtype(fmt).newbyteorder("<")
    path.write_bytes(
        np.ascontiguousarray(to_storage(values, fmt, path.name), dtype=dtype).tobytes()
    )


BIN_LIMIT = 1 << 34
"""Largest binary file read (bytes)."""


def read_bin(path: Path, shape: tuple[int, ...], fmt: IntFormat,
             limit: int = BIN_LIMIT) -> npt.NDArray[np.int64]:
    """Read a file written by :func:`write_bin`: a regular file of exactly
    ``prod(shape)`` elements of ``fmt``'s storage dtype, every value within ``fmt``
    (GoldenError naming the file and the first element outside)."""
    dtype = storage_dtype(fmt).newbyteorder("<")
    count = int(np.prod(shape, dtype=np.int64))
    raw = read_bytes(path, min(limit, count * dtype.itemsize), None, GoldenError, ".bin file")
    if len(raw) != count * dtype.itemsize:
        raise GoldenError(f"{path}: {len(raw)} bytes, expected {count * dtype.itemsize}")
    values = np.frombuffer(raw, dtype=dtype)
    bad: npt.NDArray[np.intp] = np.flatnonzero((values < fmt.min) | (values > fmt.max))
    if len(bad):
        raise GoldenError(f"{path}: element {int(bad[0])} = {int(values[bad[0]])} lies outside "
                          f"{fmt}")
    if dtype == np.dtype("<u8") and values.size and int(values.max()) > 2**63 - 1:
        raise GoldenError(f"{path}: uint64 values beyond int64 cannot be read into int64")
    return values.astype(np.int64).reshape(shape)


__all__ = ["BIN_LIMIT", "read_bin", "write_bin"]
