"""A deterministic, pickle-free .npy writer and a strict reader.

refq writes the bytes of every .npy itself (NPY format 1.0) instead of calling
``np.save``, so the files are identical under every NumPy version: magic ``\\x93NUMPY``,
version 1.0, a header dict in one canonical spelling padded with spaces to a multiple of
64 bytes and ended by a newline, then the C-order little-endian data.

The reader accepts exactly that spelling (NumPy's own writer uses it too): the header is
matched by a regular expression, never evaluated; its length is capped; the dtype must be
one the caller allows (integers for golden tensors and program constants; floats too for
spec parameters) — no object arrays, so nothing is ever unpickled; the data length must be
exactly shape × itemsize before anything is allocated.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError, RefqError
from refq.files.safe import MiB, read_bytes

MAGIC = b"\x93NUMPY\x01\x00"
INT_DTYPES: dict[str, type[np.generic]] = {
    "|i1": np.int8,
    "|u1": np.uint8,
    "<i2": np.int16,
    "<u2": np.uint16,
    "<i4": np.int32,
    "<u4": np.uint32,
    "<i8": np.int64,
    "<u8": np.uint64,
}
FLOAT_DTYPES: dict[str, type[np.generic]] = {"<f4": np.float32, "<f8": np.float64}
REAL_DTYPES = {**INT_DTYPES, **FLOAT_DTYPES}
DTYPES = INT_DTYPES
_DESCR = {np.dtype(v): k for k, v in REAL_DTYPES.items()}
NPY_LIMIT = 4096 * MiB
"""Largest .npy file a refq reader accepts."""
_HEADER_MAX = 4096
_HEADER = re.compile(
    r"\{'descr': '([^'\\]{1,16})', 'fortran_order': (False|True), "
    r"'shape': \((|[0-9]{1,12},|[0-9]{1,12}(?:, [0-9]{1,12}){1,31})\), \} *\n"
)


def npy_header(dtype: np.dtype[Any], shape: tuple[int, ...],
               allowed: dict[str, type[np.generic]] = INT_DTYPES) -> bytes:
    """The canonical NPY 1.0 header (magic to newline) of ``dtype`` and ``shape``."""
    dt = dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype
    if _DESCR.get(dt) not in allowed:
        kinds = "integer" if allowed is INT_DTYPES else "integer or float"
        raise GoldenError(f"refq writes {kinds} arrays only, got dtype {dtype}")
    dims = repr(tuple(int(d) for d in shape))  # "()", "(3,)", "(2, 3)"
    header = f"{{'descr': '{_DESCR[dt]}', 'fortran_order': False, 'shape': {dims}, }}"
    total = len(MAGIC) + 2 + len(header) + 1
    header += " " * ((-total) % 64) + "\n"
    return MAGIC + len(header).to_bytes(2, "little") + header.encode("latin1")


def npy_bytes(array: npt.NDArray[Any], allowed: dict[str, type[np.generic]] = INT_DTYPES,
              ) -> bytes:
    """The canonical NPY 1.0 bytes of an array of an ``allowed`` dtype (integers unless
    told otherwise)."""
    arr = np.asarray(array)
    header = npy_header(arr.dtype, arr.shape, allowed)
    data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
    return header + data


def parse_header(raw: bytes, name: str, allowed: dict[str, type[np.generic]] = INT_DTYPES,
                 error: type[RefqError] = GoldenError) -> tuple[np.dtype[Any], tuple[int, ...],
                                                                 int]:
    """(dtype, shape, data offset) of NPY bytes (the data itself is not looked at)."""
    if raw[:6] != MAGIC[:6] or raw[6:8] not in (b"\x01\x00", b"\x02\x00"):
        raise error(f"{name}: not an NPY 1.x/2.x file")
    if raw[6:8] == b"\x01\x00":
        hlen, start = int.from_bytes(raw[8:10], "little"), 10
    else:
        hlen, start = int.from_bytes(raw[8:12], "little"), 12
    if hlen > _HEADER_MAX or start + hlen > len(raw):
        raise error(f"{name}: NPY header of {hlen} bytes (truncated or malformed)")
    m = _HEADER.fullmatch(raw[start : start + hlen].decode("latin1"))
    if m is None:
        raise error(f"{name}: malformed NPY header {raw[start : start + min(hlen, 120)]!r}")
    descr, fortran, dims = m.groups()
    if descr not in allowed:
        kinds = "an integer" if allowed is INT_DTYPES else "an integer or float"
        raise error(f"{name}: dtype {descr!r} is not {kinds} dtype refq reads")
    if fortran != "False":
        raise error(f"{name}: Fortran-ordered arrays are not refq arrays")
    shape = tuple(int(d) for d in dims.replace(",", " ").split())
    return np.dtype(allowed[descr]), shape, start + hlen


def parse_npy(raw: bytes, name: str, allowed: dict[str, type[np.generic]] = INT_DTYPES,
              error: type[RefqError] = GoldenError) -> npt.NDArray[Any]:
    """Parse NPY bytes (the canonical spelling, module docstring) of an ``allowed`` dtype."""
    dtype, shape, offset = parse_header(raw, name, allowed, error)
    count = 1
    for d in shape:
        count *= d
    if len(raw) - offset != count * dtype.itemsize:
        raise error(f"{name}: {len(raw) - offset} data bytes, expected "
                    f"{count * dtype.itemsize} for shape {shape}")
    out: npt.NDArray[Any] = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).copy()
    return out


def read_npy(path: Path, root: Path | None = None,
             allowed: dict[str, type[np.generic]] = INT_DTYPES,
             error: type[RefqError] = GoldenError, limit: int = NPY_LIMIT) -> npt.NDArray[Any]:
    """Read a .npy file (a regular file inside ``root`` if given) without ever unpickling."""
    return parse_npy(read_bytes(path, limit, root, error, ".npy file"), str(path), allowed, error)


__all__ = ["DTYPES", "FLOAT_DTYPES", "INT_DTYPES", "NPY_LIMIT", "REAL_DTYPES", "npy_bytes",
           "npy_header",
           "parse_header", "parse_npy", "read_npy"]
