"""The tiled BLAS path of exact_matmul (scratch reuse, tiles, conversion blocks) is exact.

The oracle is Python-int matmul through object arrays; tile and conversion sizes are shrunk so
that small hypothesis shapes cross every tile and block boundary.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refq.intmath.gemm as gemm
from refq.intmath import exact_matmul


def oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a.astype(object), b.astype(object))


def check(a: np.ndarray, b: np.ndarray, out_dtype: type = np.int64) -> None:
    got = exact_matmul(a, b, out_dtype)
    want = oracle(a, b)
    assert got.dtype == out_dtype
    assert got.shape == want.shape
    assert (got.astype(object) == want).all()


@pytest.fixture
def tiny_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemm, "_TILE", 12)
    monkeypatch.setattr(gemm, "_TILE_2D", 12)
    monkeypatch.setattr(gemm, "_PIPELINE_MIN", 8)  # batched one-chunk products: tiled too


@st.composite
def int8_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    m, k, n = draw(st.integers(1, 9)), draw(st.integers(1, 40)), draw(st.integers(1, 9))
    batch = draw(st.sampled_from([(), (1,), (3,), (2, 3)]))
    b_batch = draw(st.sampled_from([(), batch, batch[-1:], (1,) * len(batch)]))
    elems = st.integers(-128, 127)
    a = draw(hnp.arrays(np.int8, (*batch, m, k), elements=elems))
    b = draw(hnp.arrays(np.int8, (*b_batch, k, n), elements=elems))
    if draw(st.booleans()):  # a non-contiguous (transposed) b, as refq.ops.linear passes
        b = np.ascontiguousarray(np.swapaxes(b, -1, -2)).swapaxes(-1, -2)
    return a, b


EDGE_A = np.full((2, 3, 7, 33), -128, dtype=np.int8)
EDGE_B = np.full((3, 33, 5), -128, dtype=np.int8)


@settings(max_examples=60, deadline=None)
@given(pair=int8_pairs(), int32_out=st.booleans())
@example(pair=(EDGE_A, EDGE_B), int32_out=False)
@example(pair=(EDGE_A, EDGE_B[0]), int32_out=True)
@example(pair=(EDGE_A[0, 0], np.full((33, 13), 127, dtype=np.int8)), int32_out=False)
@pytest.mark.usefixtures("tiny_tiles")
def test_tiled_path_matches_oracle(pair: tuple[np.ndarray, np.ndarray], int32_out: bool) -> None:
    a, b = pair
    check(a, b, np.int32 if int32_out else np.int64)


@settings(max_examples=60, deadline=None)
@given(pair=int8_pairs(), int32_out=st.booleans(), data=st.data())
@pytest.mark.usefixtures("tiny_tiles")
def test_pipelined_k_chunks_match_oracle(
    pair: tuple[np.ndarray, np.ndarray], int32_out: bool, data: st.DataObject
) -> None:
    """The tiled multi-chunk path directly, with small chunks (any kc is exact here: each
    chunk's |partial sums| <= 40·2^14 < 2^24)."""
    a, b = pair
    k = a.shape[-1]
    kc = data.draw(st.integers(1, k + 2))  # kc >= k: the one-chunk tile branch
    total = k * 128 * 128
    out_dtype = np.int32 if int32_out else np.int64
    got = gemm._pipelined(a, b, np.dtype(np.float32), out_dtype, kc, total)
    want = oracle(a, b)
    assert got.dtype == out_dtype
    assert got.shape == want.shape
    assert (got.astype(object) == want).all()


@pytest.mark.parametrize("k", [1023, 1024, 1025])
def test_k_at_the_float32_bound(k: int) -> None:
    """K·128·128 crosses 2^24 at K = 1024: one tile of float32, then two K-chunks."""
    a = np.full((2, 5, k), -128, dtype=np.int8)
    b = np.full((k, 3), -128, dtype=np.int8)
    check(a, b)
    check(a, b, np.int32)


def test_wide_operands_take_float64_tiles() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-(2**15), 2**15, (3, 9, 64), dtype=np.int16)
    b = np.full((64, 11), -(2**15), dtype=np.int16)
    check(a, b)


def test_scratch_is_not_aliased_by_results() -> None:
    """Results are fresh arrays: a later call (reusing the scratch) leaves them unchanged."""
    rng = np.random.default_rng(4)
    a1 = rng.integers(-128, 128, (4, 50, 30), dtype=np.int8)
    b1 = rng.integers(-128, 128, (30, 20), dtype=np.int8)
    r1 = exact_matmul(a1, b1)
    keep = r1.copy()
    a2 = rng.integers(-128, 128, (2, 10, 30), dtype=np.int8)
    exact_matmul(a2, b1)
    exact_matmul(a1[:, :3], b1[:, :7])
    np.testing.assert_array_equal(r1, keep, strict=True)
    check(a1[:, :3], b1[:, :7])


def test_threads_do_not_share_scratch() -> None:
    rng = np.random.default_rng(5)
    pairs = [
        (
            rng.integers(-128, 128, (3, 40, 64), dtype=np.int8),
            rng.integers(-128, 128, (3, 64, 40), dtype=np.int8),
        )
        for _ in range(4)
    ]
    wants = [oracle(a, b) for a, b in pairs]
    errors: list[str] = []

    def work(i: int) -> None:
        for _ in range(20):
            got = exact_matmul(*pairs[i])
            if not (got.astype(object) == wants[i]).all():
                errors.append(f"thread {i}")
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@st.composite
def chunked_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """int16 operands with max|a|·max|b| around 2^20: 2 to 4 float32 K-chunks of ~16."""
    m, k, n = draw(st.integers(1, 7)), draw(st.integers(17, 64)), draw(st.integers(1, 7))
    batch = draw(st.sampled_from([(), (2,)]))
    elems = st.integers(-(2**10), 2**10)
    a = draw(hnp.arrays(np.int16, (*batch, m, k), elements=elems))
    b = draw(hnp.arrays(np.int16, (*draw(st.sampled_from([(), batch])), k, n), elements=elems))
    return a, b


CHUNK_A = np.full((2, 3, 64), -(2**10), dtype=np.int16)
CHUNK_B = np.full((64, 5), -(2**10), dtype=np.int16)


@settings(max_examples=60, deadline=None)
@given(pair=chunked_pairs(), int32_out=st.booleans())
@example(pair=(CHUNK_A, CHUNK_B), int32_out=False)
@example(pair=(CHUNK_A, CHUNK_B), int32_out=True)
@example(pair=(CHUNK_A[:, :, :17], -CHUNK_B[:17]), int32_out=False)
@pytest.mark.usefixtures("tiny_tiles")
def test_k_chunked_tiles_match_oracle(pair: tuple[np.ndarray, np.ndarray], int32_out: bool) -> None:
    a, b = pair
    check(a, b, np.int32 if int32_out else np.int64)


def test_int8_minus_zero_point_in_int16_stays_float32() -> None:
    """uint8 - 128 carried as int16 (refq.ops.linear): data bounds, 2 float32 chunks."""
    rng = np.random.default_rng(6)
    a = (rng.integers(0, 256, (3, 40, 1536)) - 128).astype(np.int16)
    b = rng.integers(-127, 128, (1536, 24), dtype=np.int8)
    a[0, 0] = -128
    b[:, 0] = -127
    check(a, b)


def test_scratch_is_reported_and_released() -> None:
    """The work buffers kept between calls are visible (scratch_bytes) and can be dropped
    (release_scratch); results do not depend on them."""
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (3, 40, 64), dtype=np.int8)
    b = rng.integers(-128, 128, (64, 50), dtype=np.int8)
    first = exact_matmul(a, b)
    assert gemm.scratch_bytes() > 0
    gemm.release_scratch()
    assert gemm.scratch_bytes() == 0
    np.testing.assert_array_equal(exact_matmul(a, b), first, strict=True)
    np.testing.assert_array_equal(first, oracle(a, b).astype(np.int64), strict=True)
