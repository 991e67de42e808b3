"""Exact integer matrix products delivered as int32 row blocks, for fused epilogues.

:func:`exact_matmul_blocks` computes the same exact integers as
:func:`refq.intmath.exact_matmul` but hands them out block by block, each block while it is
in cache, so that a caller can finish its rows (bias, requantization, a table lookup) before
the next block is made — without a whole int64 (or float) result written to and read back
from memory. It is the producer of the interpreter's fused GEMM epilogues
(:mod:`refq.program.steps`).

Exactness is proved as in :mod:`refq.intmath.gemm` (module docstring there): with
P = max|a|·max|b|, every float32 K-chunk of at most ⌊2^24/P⌋ columns is an exact matmul
whatever order the BLAS sums in, and its result converts exactly to int32; several chunks
are summed in int32, which cannot wrap because the whole result is bounded by K·P < 2^31 —
required here (RangeError otherwise, as for ``exact_matmul(..., np.int32)``). More than
``MAX_BLAS_CHUNKS`` float32 chunks, or P > 2^24: one float64 chunk (K·P < 2^31 < 2^53).

Like gemm.py, this module computes in floating point only where the result is provably the
exact integer. The one function that names a float type is :func:`blas_dtype`, which
holds the proof; the rest of the module moves data in whatever dtype it returns (the
float-scan exemption in tests/intmath/test_no_float.py covers that function only).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import RangeError, SpecError
from refq.intmath.gemm import (
    _SCRATCH,
    MAX_BLAS_CHUNKS,
    _abs_max,
    _dtype_abs_max,
    _integer_operand,
)

BLOCK_TILE = 1 << 20
"""Output elements per BLAS call: large, because each call re-packs the shared operand
(a 64-row call on a 384x1536 weight spends as long packing as multiplying)."""

WEIGHT_TILE = 1 << 18
"""Elements of a shared ``b`` converted to float at a time (1 MiB of float32) when the
product is one row tile: a weight of more is converted and multiplied in column tiles,
each written into its columns of the result, so that the kept conversion buffer stays
small (a DeiT-S MLP weight whole is 2.25 MiB, a third of the float forward's peak at
batch 1). The same products, and BLAS calls as fast (measured: 197x384 @ 384x1536 whole
2.56 ms, in four tiles 2.48 ms). A product of several row tiles converts b whole, once."""


def _bound(x: npt.NDArray[np.integer[Any]]) -> int:
    """max |x|: the dtype's bound when it is small, else the values' own."""
    bound = _dtype_abs_max(x)
    return bound if bound <= 1 << 8 else _abs_max(x)


def exact_matmul_blocks(
    a: Any, b: Any, rows: int, b_max: int | None = None
) -> Iterator[tuple[int, int, npt.NDArray[np.int32]]]:
    """The exact product ``a @ b`` as int32 blocks ``(r0, r1, block)`` of at most ``rows``
    rows of the result flattened to 2-D (``(prod(lead), N)``), in order.

    Shapes: ``a`` (..., K) with a 2-D ``b`` (K, N) (a linear layer: every row of ``a``
    times one matrix), or ``a`` (G, M, K) with ``b`` (G, K, N) (a batch of G products;
    row g·M + i of the flattened result is row i of product g). Operands: integers of at
    most 32 bits. Result: the mathematically exact integers, which must provably fit int32:
    K·max|a|·max|b| < 2^31, else RangeError before any work.

    ``b_max``: a bound on max|b| that the caller proved (a constant it scanned, read-only
    since), used in place of b's dtype bound — a narrow weight of small values (4-bit
    levels in int8) then proves the int32 bound that its dtype would not.

    Each ``block`` is a view of a work buffer that the next step of the iteration
    overwrites: read it (or copy it) before asking for the next one. One iteration at a
    time per thread.
    """
    aa = _integer_operand(a, "a")
    ba = _integer_operand(b, "b")
    if ba.ndim == 2:
        if aa.ndim < 1 or aa.shape[-1] != ba.shape[0]:
            raise SpecError(f"exact_matmul_blocks: shapes {aa.shape} @ {ba.shape}")
        a3 = aa.reshape(1, -1, ba.shape[0])
        b3 = ba.reshape(1, *ba.shape)
    elif ba.ndim == 3 and aa.ndim == 3 and aa.shape[0] == ba.shape[0] \
            and aa.shape[2] == ba.shape[1]:
        a3, b3 = aa, ba
    else:
        raise SpecError(f"exact_matmul_blocks: shapes {aa.shape} @ {ba.shape}")
    if rows < 1:
        raise SpecError(f"exact_matmul_blocks: rows must be >= 1, got {rows}")
    k = a3.shape[2]
    if b_max is not None and b_max < 0:
        raise SpecError(f"exact_matmul_blocks: b_max must be >= 0, got {b_max}")
    bb = _bound(b3) if b_max is None else b_max
    p = _bound(a3) * bb if a3.size and b3.size else 0
    if k * p >= 2**31:
        raise RangeError(
            f"exact_matmul_blocks: int32 result not provably exact "
            f"(K·max|a|·max|b| = {k * p} >= 2^31)"
        )
    return _blocks(a3, b3, rows, p)


def blas_dtype(k: int, p: int) -> tuple[np.dtype[Any], int]:
    """The float dtype and number of K-chunks in which every BLAS operation of an
    (M, K) @ (K, N) product with K·P < 2^31 (P = max|a|·max|b| >= 1) is exact.

    Proof (module docstring): a chunk of kc <= ⌊2^24/P⌋ columns has every product and every
    partial sum, in any order, an integer of magnitude <= kc·P <= 2^24, representable in
    float32; so float32 in ⌈K/⌊2^24/P⌋⌉ chunks when that is 1..MAX_BLAS_CHUNKS. Otherwise
    (P > 2^24, or too many chunks) one float64 chunk: every partial sum is bounded by
    K·P < 2^31 <= 2^53. The only code of this module that names a float type."""
    if not p > 0 or k * p >= 2**31:
        raise RangeError(f"blas_dtype: K·P = {k * p} outside 1..2^31 - 1")
    kc = (1 << 24) // p
    if kc >= 1 and -(-k // kc) <= MAX_BLAS_CHUNKS:
        return np.dtype(np.float32), -(-k // kc)
    return np.dtype(np.float64), 1


def _blocks(
    a3: npt.NDArray[np.integer[Any]], b3: npt.NDArray[np.integer[Any]], rows: int, p: int
) -> Iterator[tuple[int, int, npt.NDArray[np.int32]]]:
    """The iteration of :func:`exact_matmul_blocks` (operands validated, bound proved)."""
    g, m, k = a3.shape
    n = b3.shape[2]
    total = g * m
    if total == 0:
        return
    if p == 0 or k == 0 or n == 0:
        zero = np.zeros((min(rows, total), n), dtype=np.int32)
        for r0 in range(0, total, rows):
            r1 = min(r0 + rows, total)
            yield r0, r1, zero[: r1 - r0]
        return
    dtype, n_chunks = blas_dtype(k, p)
    kc = -(-k // n_chunks)  # balanced chunks, still within the exact bound
    shared = g == 1  # one b for every row: one 2-D GEMM over all rows of a
    wt = b3[0].T  # (N, K): W as the caller holds it (b = W.T of a linear layer)
    whole = False
    if shared:
        a2 = a3.reshape(total, k)
        tile_rows = max(rows, BLOCK_TILE // max(n, k) // rows * rows)
        whole = total > tile_rows  # several row tiles: W converted once, reused by each
        n_tiles = 1 if whole else -(-n * min(k, kc) // WEIGHT_TILE)
        nt = -(-n // n_tiles)  # columns of b converted at a time
        bf = _SCRATCH.keep("blocks.b", dtype, (n, k) if whole else (nt, min(k, kc)))
        if whole:
            np.copyto(bf, wt, casting="unsafe")
    else:
        per = max(1, BLOCK_TILE // (m * max(n, k)))  # whole products per BLAS call
        tile_rows = per * m
    cap = min(tile_rows, total)
    af = _SCRATCH.keep("blocks.a", dtype, (cap, k))
    cf = _SCRATCH.keep("blocks.c", dtype, (cap, n))
    acc = _SCRATCH.keep("blocks.acc", np.dtype(np.int32), (cap, n)) if n_chunks > 1 else None
    bt = None if shared else _SCRATCH.keep("blocks.b", dtype, (cap // m, k, n))
    blk = _SCRATCH.keep("blocks.out", np.dtype(np.int32), (min(rows, cap), n))
    for t0 in range(0, total, tile_rows):
        t1 = min(t0 + tile_rows, total)
        ft = cf[: t1 - t0]
        for c0 in range(0, k, kc):
            c1 = min(c0 + kc, k)
            if shared:
                at = af[: t1 - t0, : c1 - c0]
                np.copyto(at, a2[t0:t1, c0:c1], casting="unsafe")
                for n0 in range(0, n, nt):  # the columns n0..n1 of the result
                    n1 = min(n0 + nt, n)
                    if whole:
                        wf = bf[n0:n1, c0:c1]
                    else:
                        wf = bf[: n1 - n0, : c1 - c0]
                        np.copyto(wf, wt[n0:n1, c0:c1], casting="unsafe")
                    np.matmul(at, wf.T, out=ft[:, n0:n1])
            else:
                g0, g1 = t0 // m, t1 // m
                at3 = af[: t1 - t0, : c1 - c0].reshape(g1 - g0, m, c1 - c0)
                np.copyto(at3, a3[g0:g1, :, c0:c1], casting="unsafe")
                assert bt is not None
                bt3 = bt[: g1 - g0, : c1 - c0]
                np.copyto(bt3, b3[g0:g1, c0:c1], casting="unsafe")
                np.matmul(at3, bt3, out=ft.reshape(g1 - g0, m, n))
            if acc is not None:  # |chunk| <= 2^24: exact in int32; the sum is < 2^31
                if c0 == 0:
                    np.copyto(acc[: t1 - t0], ft, casting="unsafe")
                else:
                    _add_chunk(acc[: t1 - t0], ft, blk)
        for r0 in range(t0, t1, rows):
            r1 = min(r0 + rows, t1)
            if acc is not None:
                yield r0, r1, acc[r0 - t0 : r1 - t0]
            else:
                out = blk[: r1 - r0]
                np.copyto(out, ft[r0 - t0 : r1 - t0], casting="unsafe")
                yield r0, r1, out


def _add_chunk(
    acc: npt.NDArray[np.int32], chunk: npt.NDArray[Any], tmp: npt.NDArray[np.int32]
) -> None:
    """acc += chunk (an exact float chunk result, |v| <= 2^24), converted block by block
    through ``tmp``."""
    step = tmp.shape[0]
    for r0 in range(0, acc.shape[0], step):
        r1 = min(r0 + step, acc.shape[0])
        t = tmp[: r1 - r0]
        np.copyto(t, chunk[r0:r1], casting="unsafe")
        np.add(acc[r0:r1], t, out=acc[r0:r1])


__all__ = ["BLOCK_TILE", "WEIGHT_TILE", "blas_dtype", "exact_matmul_blocks"]
