"""isqrt and ilog2 against Python's math.isqrt and int.bit_length."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refq.errors import SpecError
from refq.intmath import ilog2, isqrt

N = st.integers(0, 2**63 - 1)


@given(n=N)
@example(n=0)
@example(n=1)
@example(n=99)  # I-ViT's 10-step Newton gives 64 here
@example(n=2**63 - 1)
@example(n=(2**31 - 1) ** 2)
@example(n=(2**31 - 1) ** 2 - 1)
@example(n=2**62)
def test_isqrt_matches_math_isqrt(n: int) -> None:
    assert int(isqrt(n)) == math.isqrt(n)


def test_isqrt_perfect_squares_and_neighbours() -> None:
    k = np.concatenate([np.arange(0, 5000), np.array([2**31 - 1, 3037000499])]).astype(np.int64)
    for n in (k * k - 1, k * k, k * k + 1):
        n = n[n >= 0]
        want = np.array([math.isqrt(int(v)) for v in n], dtype=np.int64)
        np.testing.assert_array_equal(isqrt(n), want, strict=True)


@given(n=st.integers(1, 2**63 - 1))
@example(n=1)
@example(n=2)
@example(n=3)  # log2 3 = 1.58 → 2
@example(n=5)  # 2.32 → 2
@example(n=6)  # 2.58 → 3
@example(n=2**63 - 1)
def test_ilog2(n: int) -> None:
    k = n.bit_length() - 1
    assert int(ilog2(n)) == k
    nearest = k + 1 if n * n > 2 ** (2 * k + 1) else k
    assert int(ilog2(n, "nearest")) == nearest


def test_bad_input() -> None:
    with pytest.raises(SpecError, match="n"):
        isqrt(-1)
    with pytest.raises(SpecError, match=">= 1"):
        ilog2(0)
    with pytest.raises(SpecError, match="rounding"):
        ilog2(4, "ceil")  # type: ignore[arg-type]
    with pytest.raises(SpecError):
        isqrt(np.array([4.0]))
