"""``.npz`` archives of named arrays: a deterministic writer and a checked reader.

Written: a zip of ``<name>.npy`` members (canonical NPY bytes, :mod:`refq.files.npy`),
sorted, stored uncompressed, every time stamp 1980-01-01 — the same arrays give the same
bytes, and NumPy's ``np.load`` reads the file. Read: the archive is a regular file of
bounded size; its member names must be exactly the expected ones, each member's declared
size must be the size its expected dtype and shape give — all checked from the zip's
directory before any member is decompressed — and each member is then parsed as a
pickle-free .npy of that dtype and shape.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import RefqError, SpecError
from refq.files.npy import REAL_DTYPES, npy_bytes, npy_header, parse_npy
from refq.files.safe import MiB, read_bytes

NPZ_LIMIT = 4096 * MiB
_EPOCH = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """Deterministic npz bytes of ``arrays`` (integer or float dtypes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, npy_bytes(arrays[name], REAL_DTYPES))
    return buf.getvalue()


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def npy_size(dtype: np.dtype[Any], shape: tuple[int, ...]) -> int:
    """Bytes of the canonical .npy of ``dtype`` and ``shape`` (nothing allocated)."""
    return len(npy_header(dtype, shape, REAL_DTYPES)) + _numel(shape) * dtype.itemsize


def read_npz(path: Path, expected: Mapping[str, tuple[np.dtype[Any], tuple[int, ...]]],
             root: Path | None = None, error: type[RefqError] = SpecError,
             limit: int = NPZ_LIMIT) -> dict[str, npt.NDArray[Any]]:
    """The arrays of the npz ``path``, which must hold exactly ``expected`` (name → dtype,
    shape); ``error`` naming the file and member otherwise (module docstring)."""
    raw = read_bytes(path, limit, root, error, ".npz file")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError,
            NotImplementedError, RuntimeError) as exc:
        raise error(f"{path}: not a readable .npz ({exc})") from None
    names = [i.filename for i in infos]
    want = {f"{k}.npy": k for k in expected}
    if len(set(names)) != len(names):
        raise error(f"{path}: a member appears twice")
    extra, missing = sorted(set(names) - set(want)), sorted(set(want) - set(names))
    if extra or missing:
        raise error(f"{path}: members {extra} not listed in the spec, "
                    f"{missing} listed but missing" if extra and missing else
                    f"{path}: members {extra} are not listed" if extra else
                    f"{path}: listed arrays missing: {missing}")
    out: dict[str, npt.NDArray[Any]] = {}
    for info in infos:
        key = want[info.filename]
        dtype, shape = expected[key]
        size = npy_size(dtype, shape)
        where = f"{path}[{info.filename}]"
        if info.file_size != size:
            raise error(f"{where}: {info.file_size} bytes, expected {size} for {dtype} "
                        f"{list(shape)}")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise error(f"{where}: compression {info.compress_type} is not stored/deflate")
        if info.flag_bits & 0x1:
            raise error(f"{where}: encrypted")
        try:
            with zf.open(info) as f:
                data = f.read(size + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError,
                NotImplementedError, RuntimeError) as exc:
            raise error(f"{where}: cannot be read ({exc})") from None
        if len(data) != size:
            raise error(f"{where}: {len(data)} bytes, its directory says {size}")
        arr = parse_npy(data, where, {k: v for k, v in REAL_DTYPES.items()
                                      if np.dtype(v) == dtype}, error)
        if arr.shape != tuple(shape):
            raise error(f"{where}: shape {list(arr.shape)}, expected {list(shape)}")
        out[key] = arr
    return out


__all__ = ["NPZ_LIMIT", "npy_size", "npz_bytes", "read_npz"]
