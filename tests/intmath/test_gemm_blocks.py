"""exact_matmul_blocks: the exact integers of a @ b, block by block, on every float path
(one float32 chunk, several float32 chunks summed in int32, one float64 chunk) and the
int32 bound it refuses to pass."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from refq.errors import RangeError, SpecError
from refq.intmath.gemm_blocks import blas_dtype, exact_matmul_blocks


def _exact(a: Any, b: Any) -> np.ndarray:
    """The oracle: Python-integer dot products (no BLAS, no fixed width)."""
    a3 = np.asarray(a).astype(object)
    b3 = np.asarray(b).astype(object)
    if b3.ndim == 2:
        a2 = a3.reshape(-1, a3.shape[-1])
        return np.array([[sum(x * y for x, y in zip(row, col, strict=True)) for col in b3.T]
                         for row in a2], dtype=object)
    return np.concatenate([_exact(a3[g], b3[g]) for g in range(a3.shape[0])])


def _collect(a: Any, b: Any, rows: int) -> np.ndarray:
    parts = []
    expect_r0 = 0
    for r0, r1, blk in exact_matmul_blocks(a, b, rows):
        assert r0 == expect_r0 and 0 < r1 - r0 <= rows
        assert blk.dtype == np.int32
        parts.append(blk.copy())  # the block is a view the next step overwrites
        expect_r0 = r1
    return np.concatenate(parts).astype(object)


@st.composite
def _operands(draw: Any) -> tuple[np.ndarray, np.ndarray, int]:
    k = draw(st.integers(1, 70))
    m = draw(st.integers(1, 9))
    n = draw(st.integers(1, 7))
    batched = draw(st.booleans())
    abits = draw(st.integers(1, 15))
    # keep K·max|a|·max|b| < 2^31
    bbits = draw(st.integers(1, max(1, min(15, 30 - abits - k.bit_length()))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    g = draw(st.integers(1, 3)) if batched else 1
    a_shape = (g, m, k) if batched else (m, k)
    b_shape = (g, k, n) if batched else (k, n)
    lo_a, lo_b = -(1 << abits), -(1 << bbits)
    a = rng.integers(lo_a, -lo_a + 1, a_shape)
    b = rng.integers(lo_b, -lo_b + 1, b_shape)
    if draw(st.booleans()):  # extremes, where rounding would show first
        a.flat[0], b.flat[0] = lo_a, lo_b
    rows = draw(st.integers(1, m * g + 2))
    return a, b, rows


@settings(max_examples=60, deadline=None)
@given(_operands())
def test_blocks_are_the_exact_product(ops: tuple[np.ndarray, np.ndarray, int]) -> None:
    a, b, rows = ops
    got = _collect(a, b, rows)
    np.testing.assert_array_equal(got, _exact(a, b), strict=True)


@pytest.mark.parametrize(
    ("abits", "bbits", "k", "path"),
    [
        (7, 7, 384, "float32 x1"),  # int8 W8A8: one float32 chunk
        (10, 10, 40, "float32 x3"),  # P = 2^20: chunks of 16 summed in int32
        (8, 8, 16384 - 1, "float64 x1"),  # P = 2^16, 64 float32 chunks: one float64 chunk
        (13, 12, 8, "float64 x1"),  # P = 2^25 > 2^24: no float32 chunk at all
    ],
)
def test_each_float_path_is_exact(abits: int, bbits: int, k: int, path: str) -> None:
    rng = np.random.default_rng(k)
    a = rng.integers(-(1 << abits), (1 << abits) + 1, (5, k))
    b = rng.integers(-(1 << bbits), (1 << bbits) + 1, (k, 3))
    a[0, :] = 1 << abits  # the largest partial sums
    b[:, 0] = 1 << bbits
    dtype, chunks = blas_dtype(k, (1 << abits) * (1 << bbits))
    assert f"{dtype.name} x{chunks}" == path
    np.testing.assert_array_equal(_collect(a, b, 2), _exact(a, b), strict=True)


def test_dtype_bound_operands_are_read_as_values() -> None:
    """int8 operands are bounded by their dtype (128); wider ones by their values."""
    a = np.full((2, 4), -128, dtype=np.int8)
    b = np.full((4, 2), -128, dtype=np.int16)
    np.testing.assert_array_equal(_collect(a, b, 1), _exact(a, b), strict=True)


def test_refuses_a_result_not_provably_int32() -> None:
    a = np.full((1, 2), 1 << 15)
    b = np.full((2, 1), 1 << 15)  # K·P = 2^31
    with pytest.raises(RangeError, match="not provably exact"):
        list(exact_matmul_blocks(a, b, 1))
    with pytest.raises(RangeError):
        blas_dtype(2, 1 << 30)


@example(shape=((2, 3), (4, 2)))
@given(st.sampled_from([((2, 3), (4, 2)), ((2, 3, 4), (3, 4, 2)), ((2, 3, 4), (2, 5, 2))]))
def test_bad_shapes_are_refused(shape: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    a = np.ones(shape[0], dtype=np.int64)
    b = np.ones(shape[1], dtype=np.int64)
    with pytest.raises(SpecError):
        list(exact_matmul_blocks(a, b, 1))


def test_zero_operand_and_rows() -> None:
    a = np.zeros((3, 4), dtype=np.int64)
    b = np.ones((4, 2), dtype=np.int64)
    np.testing.assert_array_equal(_collect(a, b, 2), _exact(a, b), strict=True)
    with pytest.raises(SpecError, match="rows"):
        list(exact_matmul_blocks(b.T, b, 0))


@settings(max_examples=40, deadline=None)
@given(_operands(), st.integers(1, 40), st.booleans())
def test_weight_column_tiles_give_the_exact_product(
    ops: tuple[np.ndarray, np.ndarray, int], tile: int, row_tiles: bool
) -> None:
    """A shared b converted in column tiles (WEIGHT_TILE made small: one to many tiles,
    balanced or with a short last one, with one or several K-chunks) gives the same exact
    integers, each tile written into its own columns; with several row tiles (BLOCK_TILE
    made small) b is converted whole, once, and gives them too."""
    import refq.intmath.gemm_blocks as gb

    a, b, rows = ops
    saved = gb.WEIGHT_TILE, gb.BLOCK_TILE
    gb.WEIGHT_TILE = tile
    if row_tiles:
        gb.BLOCK_TILE = 1  # tile_rows = rows
    try:
        got = _collect(a, b, rows)
    finally:
        gb.WEIGHT_TILE, gb.BLOCK_TILE = saved
    np.testing.assert_array_equal(got, _exact(a, b), strict=True)


def test_weight_column_tiles_with_several_chunks() -> None:
    """Three float32 K-chunks summed in int32, each over four column tiles of W.T."""
    import refq.intmath.gemm_blocks as gb

    rng = np.random.default_rng(3)
    a = rng.integers(-(1 << 10), (1 << 10) + 1, (6, 40))
    w = rng.integers(-(1 << 10), (1 << 10) + 1, (11, 40))
    a[0, :], w[:, 0] = 1 << 10, 1 << 10
    saved = gb.WEIGHT_TILE
    gb.WEIGHT_TILE = 3 * 14  # kc = 14 (P = 2^20): 3 columns of b per tile
    try:
        got = _collect(a, w.T, 4)  # b = W.T, as a linear layer holds it
    finally:
        gb.WEIGHT_TILE = saved
    np.testing.assert_array_equal(got, _exact(a, w.T), strict=True)


def test_b_max_proves_what_the_dtype_does_not() -> None:
    """An int8 b of 4-bit values: its dtype bound (128) proves no int32 result for int16
    a at K = 1536, the caller's b_max = 7 does — and gives the exact product; a negative
    b_max is refused."""
    rng = np.random.default_rng(9)
    a = rng.integers(-(2**15), 2**15, (3, 1536)).astype(np.int16)
    w = rng.integers(-7, 8, (1536, 2)).astype(np.int8)
    a[0] = 2**15 - 1
    w[:, 0] = 7
    with pytest.raises(RangeError):
        _collect(a, w, 2)
    got = np.concatenate([blk.copy() for _, _, blk in exact_matmul_blocks(a, w, 2, 7)])
    np.testing.assert_array_equal(got.astype(object), _exact(a, w), strict=True)
    with pytest.raises(SpecError):
        next(iter(exact_matmul_blocks(a, w, 2, -1)))
