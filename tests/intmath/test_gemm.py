"""exact_matmul: exact on every path, RangeError where int64 cannot hold the result."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refq.errors import RangeError, SpecError
from refq.intmath import exact_matmul


def oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Python-int matmul through object arrays (arbitrary precision)."""
    return np.matmul(a.astype(object), b.astype(object))


def assert_exact(a: np.ndarray, b: np.ndarray) -> None:
    """exact_matmul equals the oracle, or raises RangeError exactly when it cannot fit."""
    want = oracle(a, b)
    if not all(-(2**63) <= int(v) < 2**63 for v in want.ravel()):
        with pytest.raises(RangeError, match="does not fit int64"):
            exact_matmul(a, b)
        return
    got = exact_matmul(a, b)
    assert got.dtype == np.int64
    assert got.shape == want.shape
    assert (got.astype(object) == want).all()


@pytest.mark.parametrize("k", [1, 7, 64, 1023, 1024, 1025, 1536, 4096])
@pytest.mark.parametrize("value_a,value_b", [(-128, -128), (127, 127), (-128, 127)])
def test_adversarial_int8(k: int, value_a: int, value_b: int) -> None:
    a = np.full((3, k), value_a, dtype=np.int8)
    b = np.full((k, 2), value_b, dtype=np.int8)
    assert_exact(a, b)


@pytest.mark.parametrize("k", [1, 64, 4096])
@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, np.uint16])
def test_adversarial_extremes(k: int, dtype: type) -> None:
    info = np.iinfo(dtype)
    for va, vb in ((info.min, info.min), (info.max, info.max), (info.min, info.max)):
        a = np.full((2, k), va, dtype=dtype)
        b = np.full((k, 3), vb, dtype=dtype)
        assert_exact(a, b)


def test_int32_full_range_raises_when_int64_cannot_hold() -> None:
    a = np.full((2, 4096), -(2**31), dtype=np.int64)
    b = np.full((4096, 2), -(2**31), dtype=np.int64)
    with pytest.raises(RangeError, match="does not fit int64"):
        exact_matmul(a, b)


def test_int32_path_near_int64_limit_is_exact() -> None:
    # 2 products of 2^62 - 2^31 - ... : K·P >= 2^63 forces the limb path, result fits.
    a = np.array([[2**31 - 1, -(2**31)]], dtype=np.int64)
    b = np.array([[2**31 - 1], [2**31 - 1]], dtype=np.int64)
    assert_exact(a, b)
    a = np.array([[2**31 - 1, 2**31 - 1, -(2**31)]], dtype=np.int64)
    b = np.array([[2**31 - 1], [2**31 - 1], [2**31 - 1]], dtype=np.int64)
    assert_exact(a, b)


int_dtypes = st.sampled_from([np.int8, np.uint8, np.int16, np.int32, np.uint32])


@st.composite
def operand_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    m, k, n = draw(st.integers(0, 6)), draw(st.integers(0, 70)), draw(st.integers(0, 6))
    batch = draw(st.sampled_from([(), (2,), (2, 3)]))
    a = draw(hnp.arrays(draw(int_dtypes), (*batch, m, k)))
    b = draw(hnp.arrays(draw(int_dtypes), (*batch[-1:], k, n)))
    return a, b


@given(pair=operand_pairs())
@example(pair=(np.full((1, 21), 10698913, dtype=np.int32),  # K·P = 2^53 + 91754449: two
               np.full((21, 1), 40089517, dtype=np.int32)))  # float64 chunks, summed past 2^53
def test_random_shapes_and_dtypes(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    try:
        want = oracle(a, b)
    except ValueError:
        return
    assert want is not None
    assert_exact(a, b)


@pytest.mark.parametrize("k", [2, 3, 4, 21, 64])
@pytest.mark.parametrize("sign", [1, -1])
def test_float64_chunks_are_summed_in_integers(k: int, sign: int) -> None:
    """K·P just past 2^53: the float64 path splits K into chunks that are each exact; their
    sum exceeds 2^53 and must be exact too (the chunks used to be added in float64)."""
    p = -(-(1 << 53) // k) + 1  # the smallest P with K·P > 2^53 (at least one odd step)
    x = 1 << 26
    y = -(-p // x)
    a = np.full((2, k), sign * x, dtype=np.int64)
    b = np.full((k, 3), y, dtype=np.int64)
    a[1, 0] -= sign  # not all products equal: the low bits differ
    want = oracle(a, b)
    assert want is not None and abs(int(want[0, 0])) > 1 << 53
    got = exact_matmul(a, b)
    assert (got.astype(object) == want).all()


def test_batched_attention_shapes() -> None:
    rng = np.random.default_rng(1)
    q = rng.integers(-128, 128, (2, 6, 17, 64), dtype=np.int8)
    k = rng.integers(-128, 128, (2, 6, 64, 17), dtype=np.int8)
    assert_exact(q, k)


@pytest.mark.parametrize(
    "a,b,needle",
    [
        (np.ones((2, 2)), np.ones((2, 2), dtype=np.int8), "a"),
        (np.ones((2, 2), dtype=np.int8), np.ones((2, 2), dtype=bool), "bool"),
        (np.ones((2, 3), dtype=np.int8), np.ones((2, 3), dtype=np.int8), "inner"),
        (np.ones(3, dtype=np.int8), np.ones((3, 1), dtype=np.int8), "2 dimensions"),
        (np.full((1, 1), 2**33), np.ones((1, 1), dtype=np.int8), "2\\^32"),
        (np.ones((2, 1, 2), dtype=np.int8), np.ones((3, 2, 1), dtype=np.int8), "broadcast"),
    ],
)
def test_bad_input(a: np.ndarray, b: np.ndarray, needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        exact_matmul(a, b)


@given(pair=operand_pairs())
def test_int32_output_is_exact_or_refused(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    try:
        want = oracle(a, b)
    except ValueError:
        return
    k = a.shape[-1]
    bound = (
        k
        * max((abs(int(v)) for v in a.ravel()), default=0)
        * max((abs(int(v)) for v in b.ravel()), default=0)
    )
    if bound >= 2**31:
        with pytest.raises(RangeError, match="int32 output"):
            exact_matmul(a, b, np.int32)
        return
    got = exact_matmul(a, b, np.int32)
    assert got.dtype == np.int32
    assert (got.astype(object) == want).all()


@pytest.mark.parametrize("k", [64, 1536, 4096])
def test_int32_output_on_adversarial_int8(k: int) -> None:
    a = np.full((3, k), -128, dtype=np.int8)
    b = np.full((k, 5), -128, dtype=np.int8)
    got = exact_matmul(a, b, np.int32)
    np.testing.assert_array_equal(got, np.full((3, 5), k * 16384, dtype=np.int32), strict=True)


def test_bad_out_dtype() -> None:
    with pytest.raises(SpecError, match="out_dtype"):
        exact_matmul(np.ones((1, 1), np.int8), np.ones((1, 1), np.int8), np.float32)
