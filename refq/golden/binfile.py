"""Raw little-endian binary: the tensor's storage dtype (int8/16/32/64 or unsigned), C order,
no header — shape and format are in the case's meta.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError
from refq.golden.tensorfmt import storage_dtype, to_storage
from refq.intmath import IntFormat


def write_bin(path: Path, values: npt.NDArray[np.integer[Any]], fmt: IntFormat) -> None:
    dtype = storage_dtype(fmt).newbyteorder("<")
    path.write_bytes(
        np.ascontiguousarray(to_storage(values, fmt, path.name), dtype=dtype).tobytes()
    )


def read_bin(path: Path, shape: tuple[int, ...], fmt: IntFormat) -> npt.NDArray[np.int64]:
    dtype = storage_dtype(fmt).newbyteorder("<")
    raw = path.read_bytes()
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) != count * dtype.itemsize:
        raise GoldenError(f"{path}: {len(raw)} bytes, expected {count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype).astype(np.int64).reshape(shape)


__all__ = ["read_bin", "write_bin"]
