"""Bucketed threshold+lookup (refq.program.buckets) against the plain ops."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from refq.program.buckets import bucket_lookup
from refq.program.movement import lookup, threshold


def _plain(x: np.ndarray, t: np.ndarray, table: np.ndarray, offset: int) -> np.ndarray:
    (codes,) = threshold(x.astype(np.int64), t)
    (out,) = lookup(codes, table, offset=offset)
    return out


@given(
    t0=st.integers(-(2**40), 2**40),
    g=st.integers(1, 3000),
    jitter=st.lists(st.integers(0, 2**16), min_size=1, max_size=40),
    offset=st.integers(-3, 0),
    seed=st.integers(0, 2**32 - 1),
    narrow=st.booleans(),
)
@example(t0=-5, g=4, jitter=[0, 0, 1, 0], offset=0, seed=0, narrow=True)  # x on every t
@example(t0=0, g=1, jitter=[0], offset=-2, seed=1, narrow=False)  # gap 1: k = 0
@example(t0=2**31 - 40, g=7, jitter=[3, 0, 6], offset=0, seed=2, narrow=True)  # near 2^31
def test_bucket_lookup_matches_threshold_then_lookup(
    t0: int, g: int, jitter: list[int], offset: int, seed: int, narrow: bool
) -> None:
    """Evenly spread thresholds (gaps in [g, 2g): at most about four buckets per
    threshold) on x at, next to and between every threshold and past both ends."""
    if narrow:
        t0 = max(-(2**31) + 5000, min(t0, 2**31 - 1 - 5000 - 2 * g * len(jitter)))
    gaps = [g + v % g for v in jitter]
    t = np.cumsum([t0, *gaps]).astype(np.int64)
    rng = np.random.default_rng(seed)
    table = rng.integers(-100, 300, t.size + 1 - offset + 2).astype(np.int64)
    lo, hi = int(t[0]) - 5000, int(t[-1]) + 5000
    if narrow:  # the int32 carrier of an input declared int32
        lo, hi = max(lo, -(2**31)), min(hi, 2**31 - 1)
    bl = bucket_lookup(t, table, offset, lo, hi)
    assert bl is not None
    x = np.concatenate([t, t - 1, t + 1, rng.integers(lo, hi + 1, 500), [lo, hi]])
    x = np.clip(x, lo, hi).astype(np.int32 if narrow else np.int64)
    x = x.reshape(-1, 1) if x.size % 7 else x.reshape(-1, 7)
    got = bl(x, np.empty(x.shape, np.int64), np.empty(x.shape, np.int32))
    np.testing.assert_array_equal(got.astype(np.int64), _plain(x, t, table, offset))


def test_bucket_lookup_refuses_what_it_cannot_prove() -> None:
    """No tables where a code would not index the table, x - t0 or the bucket index would
    not fit, or the thresholds are not strictly increasing."""
    t = np.array([0, 10, 20], dtype=np.int64)
    table = np.arange(4, dtype=np.int64)
    assert bucket_lookup(t, table, 0, -100, 100) is not None
    assert bucket_lookup(t, table[:3], 0, -100, 100) is None  # code 3 outside the table
    assert bucket_lookup(t, table, 1, -100, 100) is None  # code 0 - 1 < 0
    # k = 3: j = -2^31 at x = -2^34 fits int32, one bucket further down does not
    assert bucket_lookup(t, table, 0, -(2**34), 100) is not None
    assert bucket_lookup(t, table, 0, -(2**34) - 8, 100) is None
    assert bucket_lookup(t + 5, table, 0, -(2**63), 100) is None  # x - t0 < -2^63
    assert bucket_lookup(t, table, 0, 0, 2**63 - 1) is None  # the +inf sentinel is no bound
    assert bucket_lookup(np.array([0, 0, 5], dtype=np.int64), table, 0, -9, 9) is None


def test_bucket_lookup_negative_control() -> None:
    """A wrong table (one entry changed) gives a different result: the comparison above
    can fail."""
    t = np.array([-7, 0, 9, 30], dtype=np.int64)
    table = np.arange(10, 15, dtype=np.int64)
    bl = bucket_lookup(t, table, 0, -50, 50)
    assert bl is not None
    x = np.arange(-50, 51, dtype=np.int64).reshape(-1, 1)
    bad = table.copy()
    bad[2] += 1
    got = bl(x, np.empty(x.shape, np.int64), np.empty(x.shape, np.int32))
    assert not np.array_equal(got.astype(np.int64), _plain(x, t, bad, 0))
