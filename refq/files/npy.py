"""A deterministic, pickle-free .npy writer and reader for integer tensors.

refq writes the bytes of every golden .npy itself (NPY format 1.0) instead of calling
``np.save``, so the files are identical under every NumPy version: magic ``\\x93NUMPY``,
version 1.0, a header dict in one canonical spelling padded with spaces to a multiple of
64 bytes and ended by a newline, then the C-order little-endian data. Only integer dtypes
are allowed, and the reader refuses anything else (no object arrays, so nothing is ever
unpickled).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError

MAGIC = b"\x93NUMPY\x01\x00"
DTYPES = {
    "|i1": np.int8,
    "|u1": np.uint8,
    "<i2": np.int16,
    "<u2": np.uint16,
    "<i4": np.int32,
    "<u4": np.uint32,
    "<i8": np.int64,
    "<u8": np.uint64,
}
_DESCR = {np.dtype(v): k for k, v in DTYPES.items()}


def npy_bytes(array: npt.NDArray[np.integer[Any]]) -> bytes:
    """The canonical NPY 1.0 bytes of an integer array."""
    arr = np.asarray(array)
    dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    if dtype not in _DESCR:
        raise GoldenError(f"golden tensors must be integer arrays, got dtype {arr.dtype}")
    shape = repr(tuple(int(d) for d in arr.shape))  # "()", "(3,)", "(2, 3)"
    header = f"{{'descr': '{_DESCR[dtype]}', 'fortran_order': False, 'shape': {shape}, }}"
    total = len(MAGIC) + 2 + len(header) + 1
    header += " " * ((-total) % 64) + "\n"
    data = np.ascontiguousarray(arr, dtype=dtype.newbyteorder("<")).tobytes()
    return MAGIC + len(header).to_bytes(2, "little") + header.encode("latin1") + data


def parse_npy(raw: bytes, name: str) -> npt.NDArray[np.integer[Any]]:
    """Parse NPY 1.0 bytes written by :func:`npy_bytes` (or an equivalent integer .npy)."""
    if raw[:6] != MAGIC[:6] or raw[6:8] not in (b"\x01\x00", b"\x02\x00"):
        raise GoldenError(f"{name}: not an NPY 1.x/2.x file")
    if raw[6:8] == b"\x01\x00":
        hlen, start = int.from_bytes(raw[8:10], "little"), 10
    else:
        hlen, start = int.from_bytes(raw[8:12], "little"), 12
    try:
        header = ast.literal_eval(raw[start : start + hlen].decode("latin1"))
    except (ValueError, SyntaxError, UnicodeDecodeError) as exc:
        raise GoldenError(f"{name}: malformed NPY header ({exc})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise GoldenError(f"{name}: malformed NPY header {header!r}")
    descr, shape = header["descr"], header["shape"]
    if descr not in DTYPES:
        raise GoldenError(f"{name}: dtype {descr!r} is not an integer dtype refq reads")
    if header["fortran_order"] is not False:
        raise GoldenError(f"{name}: Fortran-ordered arrays are not golden tensors")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise GoldenError(f"{name}: malformed shape {shape!r}")
    dtype = np.dtype(DTYPES[descr])
    data = raw[start + hlen :]
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if len(data) != count * dtype.itemsize:
        raise GoldenError(
            f"{name}: {len(data)} data bytes, expected {count * dtype.itemsize} for {shape}"
        )
    out: npt.NDArray[np.integer[Any]] = np.frombuffer(  # type: ignore[assignment, unused-ignore]
        data, dtype=dtype
    ).reshape(shape).copy()
    return out


def read_npy(path: Path) -> npt.NDArray[np.integer[Any]]:
    """Read an integer .npy file without ever unpickling."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GoldenError(f"cannot read {path}: {exc.strerror}") from None
    return parse_npy(raw, str(path))


__all__ = ["npy_bytes", "parse_npy", "read_npy"]
