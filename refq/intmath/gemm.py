"""Exact integer matrix multiplication, at BLAS speed where exactness is provable.

This is the only intmath module that computes in floating point, and only where the
result is provably the exact integer (numeric contract 5).

Why the float paths are exact: let P = max|a| · max|b| and split the K axis into chunks of
``kc`` columns with kc · P <= 2^m (m = 24 for float32, 53 for float64). Every product
a_ik·b_kj and every partial sum of a chunk — in whatever order, association, blocking or
fused multiply-add the BLAS uses — is an integer of magnitude <= kc · P <= 2^m, and every
integer of magnitude <= 2^m is representable in that float format. So every floating-point
operation of the chunk's matmul is exact, and converting the chunk result to int64 gives the
exact integer. The chunk results are then summed in int64, where the total is bounded by
K · P (checked against 2^63 before any arithmetic).
"""

from __future__ import annotations

import math
import threading
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from refq.errors import RangeError, SpecError
from refq.intmath.arrays import IntArray, as_int64

_MAX_OPERAND = 2**32
MAX_BLAS_CHUNKS = 4
"""A float path is taken only if it needs at most this many K-chunks (else the int path)."""


def _abs_max(x: npt.NDArray[np.integer[Any]]) -> int:
    if x.size == 0:
        return 0
    return max(abs(int(x.min())), abs(int(x.max())))


_DTYPE_ABS_MAX: dict[np.dtype[Any], int] = {}


def _dtype_abs_max(x: npt.NDArray[np.integer[Any]]) -> int:
    """Largest |value| the dtype can hold (a valid bound without reading the data)."""
    bound = _DTYPE_ABS_MAX.get(x.dtype)
    if bound is None:
        info = np.iinfo(x.dtype)
        bound = _DTYPE_ABS_MAX[x.dtype] = max(-int(info.min), int(info.max))
    return bound


def _batch_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """np.broadcast_shapes of two batch shapes (ValueError if they do not broadcast), with
    the common equal and empty cases answered without the NumPy call."""
    if a == b or not b:
        return a
    if not a:
        return b
    return tuple(np.broadcast_shapes(a, b))


def _integer_operand(x: Any, name: str) -> npt.NDArray[np.integer[Any]]:
    """Validate without widening: int8 data stays int8 until the one cast to float."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu" or arr.dtype.itemsize > 8:
        as_int64(arr, name)  # raises the uniform SpecError
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8:
        return as_int64(arr, name)
    return arr


def _blas_exact(
    a: npt.NDArray[np.integer[Any]],
    b: npt.NDArray[np.integer[Any]],
    k: int,
    p: int,
    out_dtype: type[np.signedinteger[Any]],
) -> npt.NDArray[np.signedinteger[Any]] | None:
    """The float32 (2^24) or float64 (2^53) BLAS path, if one is provably exact and needs
    at most MAX_BLAS_CHUNKS chunks; None otherwise."""
    for mantissa, dtype in ((24, np.float32), (53, np.float64)):
        kc = (1 << mantissa) // p
        if kc >= 1 and -(-k // kc) <= MAX_BLAS_CHUNKS:
            return _chunked(a, b, kc, dtype, k * p, out_dtype)
    return None


def _chunked(
    a: npt.NDArray[np.integer[Any]],
    b: npt.NDArray[np.integer[Any]],
    kc: int,
    dtype: type[np.floating[Any]],
    total_bound: int,
    out_dtype: type[np.signedinteger[Any]],
) -> npt.NDArray[np.signedinteger[Any]]:
    """Sum of exact float matmuls over K-chunks of at most ``kc`` columns.

    Each chunk result is an exact integer. The chunk sum is accumulated in int32 when the
    whole result is bounded by ``total_bound`` < 2^31. A single chunk (the common case) is
    :func:`_single`; several 4-byte (float32) chunks go through :func:`_pipelined`.
    """
    k = a.shape[-1]
    n_chunks = -(-k // kc)
    kc = -(-k // n_chunks)  # balanced chunks, still <= the exact bound
    if n_chunks == 1 and not (
        np.dtype(dtype).itemsize == 4 and b.ndim > 2 and a.shape[-2] * b.shape[-1] * max(
            math.prod(a.shape[:-2]), math.prod(b.shape[:-2])) >= _PIPELINE_MIN
    ):
        return _single(a, b, np.dtype(dtype), out_dtype)
    if np.dtype(dtype).itemsize == 4:
        return _pipelined(a, b, np.dtype(dtype), out_dtype, kc, total_bound)
    af = a.astype(dtype)
    bf = b.astype(dtype)
    acc = np.int32 if total_bound < 2**31 else np.int64
    out: npt.NDArray[np.signedinteger[Any]] | None = None
    for k0 in range(0, k, kc):
        part = np.matmul(af[..., k0 : k0 + kc], bf[..., k0 : k0 + kc, :]).astype(acc)
        # each chunk is exact; the sum must be taken in the integer type: np.add of an int64
        # and a float64 array computes in float64 and rounds once the total passes 2^53
        out = part if out is None else np.add(out, part, out=out)
    assert out is not None
    return out.astype(out_dtype, copy=False)


def _single(
    a: npt.NDArray[np.integer[Any]],
    b: npt.NDArray[np.integer[Any]],
    dtype: np.dtype[Any],
    out_dtype: type[np.signedinteger[Any]],
) -> npt.NDArray[np.signedinteger[Any]]:
    """One exact BLAS matmul (a 2-D ``b`` makes it one 2-D GEMM over all rows of ``a``).

    The float operands and the float result go into per-thread scratch buffers
    (``_SCRATCH``; only buffers of at most ``_SCRATCH_KEEP`` elements are kept between
    calls, larger ones are fresh — kept multi-MB buffers would count against the integer
    program's peak memory, and in steady state they saved no measurable time). A ``b`` that is the
    transpose of a C-contiguous matrix (W.T of a linear layer) is cast as W and handed to
    BLAS transposed. Conversion of a 4-byte result of at most ``_SCRATCH_KEEP`` elements:
    float32 → int32 scratch → output (both casts vectorized and exact, |v| <= 2^24); of a
    larger or float64 result: straight to the output (no second multi-MB temporary).
    Only the returned array is freshly allocated.
    """
    k, n = a.shape[-1], b.shape[-1]
    af = _cast(a, dtype, "a")
    if b.ndim == 2 and not b.flags.c_contiguous and b.T.flags.c_contiguous:
        bf = _cast(b.T, dtype, "b").T
    else:
        bf = _cast(b, dtype, "b")
    if b.ndim == 2 and a.ndim > 2:
        a2 = af.reshape(-1, k)
        c = _SCRATCH.get("c", dtype, (a2.shape[0], n))
        np.matmul(a2, bf, out=c)
        shape = (*a.shape[:-1], n)
    else:
        shape = (*_batch_shape(a.shape[:-2], b.shape[:-2]), a.shape[-2], n)
        c = _SCRATCH.get("c", dtype, shape)
        np.matmul(af, bf, out=c)
    res = np.empty(shape, dtype=out_dtype)
    dst = res.reshape(c.shape)
    if dtype.itemsize == 4 and out_dtype is np.int64 and c.size <= _SCRATCH_KEEP:
        t32 = _SCRATCH.get("t", np.dtype(np.int32), c.shape)
        np.copyto(t32, c, casting="unsafe")
        np.copyto(dst, t32)
    else:
        np.copyto(dst, c, casting="unsafe")
    return res


def _cast(
    x: npt.NDArray[np.integer[Any]], dtype: np.dtype[Any], role: str
) -> npt.NDArray[Any]:
    """``x`` converted to ``dtype`` (exactly: |x| <= 2^32 < 2^53, and the float32 paths have
    |x| <= 2^24) in the scratch buffer of ``role``."""
    buf = _SCRATCH.get(role, dtype, x.shape)
    np.copyto(buf, x, casting="unsafe")
    return buf


_PIPELINE_MIN = 1 << 20
"""Batched (per-head) products with at least this many output elements take the tiled
:func:`_pipelined` path even with one K-chunk: each tile's float32 result is converted while
it is in cache, instead of a whole float32 result written to and read back from memory
(per-head q@kT of DeiT-S at batch 8: 1.86 M outputs)."""

_TILE = 1 << 18
"""Output elements per pipelined BLAS call of batched matrices (whole batch matrices, or a
row block of one)."""
_TILE_2D = 1 << 20
"""Output elements per BLAS call when ``b`` is one matrix (row blocks of all rows of ``a``):
larger, as each call re-packs ``b``."""
_SCRATCH_KEEP = 1 << 16
"""Scratch buffers of at most this many elements are kept (per thread) between calls.

Measured (tools/bench/program.py and tools/bench/gemm.py, 2-core x86-64 VM): keeping
buffers up to 2^20 elements added 6 MB to the batch-1 DeiT-S program's memory peak (2.5x the
float forward's instead of 1.6x) for no time gain in the program or the steady-state GEMM
benchmark; it helps only a caller that alternates shapes so that the allocator trims and
re-faults its heap (batch-1 qkv in such a loop: 2.2x float32 instead of 1.3x)."""


class _Scratch(threading.local):
    """Per-thread reusable work buffers, keyed by role and dtype.

    Reusing them is what keeps exact_matmul free of page faults: a fresh multi-MB buffer per
    call is returned to the OS by malloc's trimming and faulted in again on the next call
    (measured: ~1100 minor faults per 197x384 @ 384x1152 call, more than the BLAS time).
    """

    def __init__(self) -> None:
        self.bufs: dict[tuple[str, np.dtype[Any]], npt.NDArray[Any]] = {}

    def get(self, role: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
        n = math.prod(shape)
        if n > _SCRATCH_KEEP:
            return np.empty(shape, dtype=dtype)
        return self.keep(role, dtype, shape)

    def keep(self, role: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
        """A buffer of ``shape`` for ``role``, kept (and grown) across calls whatever its
        size: for callers that reuse large buffers every call (the row-block GEMMs of
        refq.intmath.gemm_blocks: a fresh multi-MB buffer per call is page-faulted in
        again each time). Counted by :func:`scratch_bytes`, dropped by
        :func:`release_scratch`."""
        n = math.prod(shape)
        key = (role, dtype)
        buf = self.bufs.get(key)
        if buf is None or buf.size < n:
            buf = np.empty(max(n, 1024), dtype=dtype)
            self.bufs[key] = buf
        return buf[:n].reshape(shape)


_SCRATCH = _Scratch()


def scratch_bytes() -> int:
    """Bytes held by this thread's reusable exact_matmul work buffers (each at most
    ``_SCRATCH_KEEP`` elements, one per role and dtype) — memory kept between calls."""
    return sum(int(b.nbytes) for b in _SCRATCH.bufs.values())


def release_scratch() -> None:
    """Drop this thread's reusable exact_matmul work buffers (they are re-made on demand)."""
    _SCRATCH.bufs.clear()


def _pipelined(
    a: npt.NDArray[np.integer[Any]],
    b: npt.NDArray[np.integer[Any]],
    dtype: np.dtype[Any],
    out_dtype: type[np.signedinteger[Any]],
    kc: int,
    total_bound: int,
) -> npt.NDArray[np.signedinteger[Any]]:
    """``a @ b`` by BLAS in ``dtype``, tiled; K-chunks of ``kc`` columns each provably exact
    (the caller proved kc·P <= 2^mantissa), the whole result bounded by ``total_bound``.

    A 2-D ``b`` makes the problem one 2-D GEMM over all rows of ``a``; a batched ``b`` is
    taken batch matrix by batch matrix. Each tile of at most ``_TILE`` output elements (whole
    batch matrices, or row blocks of one) is: its operands cast into reused scratch, then per
    K-chunk one BLAS call into a reused scratch result. Called with a 4-byte dtype and
    several K-chunks, or one chunk of a large batched product (``_PIPELINE_MIN``), so each
    chunk result |v| <= 2^24 converts exactly to int32; the chunk results are summed exactly
    in int32 when ``total_bound`` < 2^31, else in the int64 output tile.
    """
    k, n = a.shape[-1], b.shape[-1]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) if b.ndim > 2 else ()
    if a.size == 0 or b.size == 0 or math.prod(batch) == 0:
        return np.zeros(
            (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], n), dtype=out_dtype
        )
    if b.ndim == 2:
        lead = a.shape[:-1]
        a3 = a.reshape(1, -1, k)
        b3 = b.reshape(1, k, n)
    else:
        lead = (*batch, a.shape[-2])
        a3 = np.broadcast_to(a, (*batch, *a.shape[-2:])).reshape(-1, *a.shape[-2:])
        b3 = np.broadcast_to(b, (*batch, *b.shape[-2:])).reshape(-1, k, n)
    n_mat, m = a3.shape[0], a3.shape[1]
    out = np.empty((n_mat, m, n), dtype=out_dtype)
    tile = _TILE_2D if b.ndim == 2 else _TILE
    if m * n >= tile:
        step, rows = 1, max(1, tile // n)
    else:
        step, rows = max(1, tile // (m * n)), m
    bt = _SCRATCH.get("b", dtype, (step, k, n)) if b3.shape[0] > 1 else None
    if bt is None and b3[0].T.flags.c_contiguous:  # e.g. W.T of a linear layer: cast W
        bt = _SCRATCH.get("b", dtype, (1, n, k))  # contiguously, BLAS reads it transposed
        np.copyto(bt[0], b3[0].T, casting="unsafe")
        bt = bt.transpose(0, 2, 1)
    elif bt is None:
        bt = _SCRATCH.get("b", dtype, (1, k, n))
        np.copyto(bt, b3, casting="unsafe")
    for i in range(0, n_mat, step):
        j = min(i + step, n_mat)
        if b3.shape[0] > 1:
            bi = bt[: j - i]
            np.copyto(bi, b3[i:j], casting="unsafe")
        else:
            bi = bt
        for r in range(0, m, rows):
            s = min(r + rows, m)
            at = _SCRATCH.get("a", dtype, (j - i, s - r, k))
            np.copyto(at, a3[i:j, r:s], casting="unsafe")
            ct = _SCRATCH.get("c", dtype, (j - i, s - r, n))
            _sum_chunks(at, bi, ct, out[i:j, r:s], kc, total_bound)
    return out.reshape((*lead, n))


def _sum_chunks(
    at: npt.NDArray[Any],
    bi: npt.NDArray[Any],
    ct: npt.NDArray[Any],
    dst: npt.NDArray[np.signedinteger[Any]],
    kc: int,
    total_bound: int,
) -> None:
    """dst = Σ over K-chunks of the exact 4-byte BLAS product, accumulated in int32 (if
    ``total_bound`` < 2^31) or in ``dst`` itself (int64)."""
    k = at.shape[-1]
    t32 = _SCRATCH.get("t", np.dtype(np.int32), ct.shape)
    if k <= kc:  # one chunk: |v| <= 2^24, float32 → int32 → dst, both casts exact
        np.matmul(at, bi, out=ct)
        np.copyto(t32, ct, casting="unsafe")
        np.copyto(dst, t32)
        return
    acc = dst if total_bound >= 2**31 or dst.dtype == np.int32 else None
    if acc is None:
        acc = _SCRATCH.get("acc", np.dtype(np.int32), ct.shape)
    for k0 in range(0, k, kc):
        np.matmul(at[..., k0 : k0 + kc], bi[..., k0 : k0 + kc, :], out=ct)
        np.copyto(t32, ct, casting="unsafe")
        if k0 == 0:
            np.copyto(acc, t32)
        else:
            np.add(acc, t32, out=acc)
    if acc is not dst:
        np.copyto(dst, acc)


@overload
def exact_matmul(a: Any, b: Any) -> IntArray: ...
@overload
def exact_matmul(a: Any, b: Any, out_dtype: type[np.int64]) -> IntArray: ...
@overload
def exact_matmul(a: Any, b: Any, out_dtype: type[np.int32]) -> npt.NDArray[np.int32]: ...


def exact_matmul(a: Any, b: Any, out_dtype: Any = np.int64) -> Any:
    """Exact ``a @ b`` for integer operands of at most 32 bits, as int64 (or int32).

    Shapes: (..., M, K) @ (..., K, N) → (..., M, N), batch dimensions broadcast as in
    ``np.matmul``. Operands: any integer dtype, values with |v| <= 2^32. Result: the
    mathematically exact integers; RangeError if one of them cannot fit int64.

    Paths (chosen from P = max|a|·max|b| and K, never from dtypes alone):
    float32 BLAS in K-chunks of ⌊2^24/P⌋ (at most 4 chunks), else float64 BLAS in chunks of
    ⌊2^53/P⌋ (at most 4 chunks), else int64 matmul when K·P < 2^63, else a split of each
    operand into 16-bit limbs whose four partial products are exact, recombined in Python
    integers and range-checked.

    ``out_dtype=np.int32`` returns int32 — allowed only when K·P < 2^31 proves every result
    (and every partial sum) fits, else RangeError. It halves the bytes written, which is what
    bounds large outputs such as per-head attention scores (tools/bench/gemm.py).
    """
    if out_dtype not in (np.int64, np.int32):
        raise SpecError(f"exact_matmul: out_dtype must be np.int64 or np.int32, got {out_dtype}")
    aa = _integer_operand(a, "a")
    ba = _integer_operand(b, "b")
    if aa.ndim < 2 or ba.ndim < 2:
        raise SpecError(
            f"exact_matmul: operands must have at least 2 dimensions, got {aa.shape} @ {ba.shape}"
        )
    if aa.shape[-1] != ba.shape[-2]:
        raise SpecError(f"exact_matmul: inner dimensions differ: {aa.shape} @ {ba.shape}")
    try:
        _batch_shape(aa.shape[:-2], ba.shape[:-2])
    except ValueError:
        raise SpecError(
            f"exact_matmul: batch dimensions do not broadcast: {aa.shape} @ {ba.shape}"
        ) from None
    ma, mb = _dtype_abs_max(aa), _dtype_abs_max(ba)
    kk = aa.shape[-1]
    if kk * ma * mb > 1 << 24:  # dtype bounds too loose for one float32 chunk: the data
        if aa.size <= ba.size:  # smaller operand first: with it the other's dtype may do
            ma = _abs_max(aa)
            if kk * ma * mb > 1 << 24:
                mb = _abs_max(ba)
        else:
            mb = _abs_max(ba)
            if kk * ma * mb > 1 << 24:
                ma = _abs_max(aa)
    if ma > _MAX_OPERAND:  # a dtype bound (int64 data): the data decides
        ma = _abs_max(aa)
    if mb > _MAX_OPERAND:
        mb = _abs_max(ba)
    for name, m in (("a", ma), ("b", mb)):
        if m > _MAX_OPERAND:
            raise SpecError(f"exact_matmul: operand {name} has |value| {m} > 2^32")
    k = aa.shape[-1]
    p = ma * mb
    if out_dtype is np.int32 and k * p >= 2**31:
        raise RangeError(
            f"exact_matmul: int32 output not provably exact (K·max|a|·max|b| = {k * p} >= 2^31)"
        )
    if p == 0 or k == 0:
        shape = (*np.broadcast_shapes(aa.shape[:-2], ba.shape[:-2]), aa.shape[-2], ba.shape[-1])
        return np.zeros(shape, dtype=out_dtype)
    exact = _blas_exact(aa, ba, k, p, out_dtype)
    if exact is not None:
        return exact
    if k * p < 2**63:
        return np.matmul(aa.astype(np.int64), ba.astype(np.int64)).astype(out_dtype)
    return _limb_matmul(aa.astype(np.int64), ba.astype(np.int64))


def _limb_matmul(a: IntArray, b: IntArray) -> IntArray:
    """a @ b via 16-bit limbs: x = x1·2^16 + x0, 0 <= x0 < 2^16, |x1| <= 2^16."""
    mask = np.int64(0xFFFF)
    a0, a1 = a & mask, a >> 16
    b0, b1 = b & mask, b >> 16
    parts = [exact_matmul(x, y) for x, y in ((a1, b1), (a1, b0), (a0, b1), (a0, b0))]
    hh, hl, lh, ll = (p.astype(object) for p in parts)
    total = hh * (1 << 32) + (hl + lh) * (1 << 16) + ll
    lo, hi = -(2**63), 2**63 - 1
    bad = np.vectorize(lambda v: not lo <= v <= hi, otypes=[bool])(total)
    if bool(bad.any()):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise RangeError(
            f"exact_matmul: exact result {total[idx]} at index {idx} does not fit int64"
        )
    return np.asarray(total, dtype=np.int64)


__all__ = ["MAX_BLAS_CHUNKS", "exact_matmul", "release_scratch", "scratch_bytes"]
