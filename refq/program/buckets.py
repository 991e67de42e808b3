"""``table[#{t <= x} - offset]`` for constant, evenly spread thresholds, by bucket tables
made at plan time (a fused threshold+lookup stage, :mod:`refq.program.move_stages`).

With strictly increasing thresholds t_0 < ... < t_(n-1) whose least gap is at least 2^k,
a bucket [t_0 + j·2^k, t_0 + (j+1)·2^k) holds at most one threshold, and for x in bucket j

    #{t <= x} = start[j] + [next[j] <= x],   start[j] = #{t < t_0 + j·2^k},
                                             next[j] = t[start[j]] (+inf when start[j] = n)

(the one threshold the bucket may hold is t[start[j]]; if t[start[j]] lies beyond the
bucket, it is > x and the comparison gives 0). For x below t_0, j < 0 is clipped to 0:
start[0] = 0 and next[0] = t_0 > x, count 0. For x at or past the last bucket, j is
clipped to the last one, which holds t_(n-1): start = n - 1, next = t_(n-1) <= x, count n.
So with j = ⌊(x - t_0)/2^k⌋ clipped to the buckets, the result is ``high[j]`` where
next[j] <= x, else ``low[j]``, with low[j] = table[start[j] - offset] and high[j] =
table[start[j] + 1 - offset] — built only when every code 0..n minus the offset indexes
the table, and when x - t_0 fits int64 for every x of the declared input format.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

_MAX_BUCKETS_PER_THRESHOLD = 16


class BucketLookup:
    """The plan-time tables of one threshold+lookup (module docstring): ``nxt`` per
    bucket, ``pairs`` = (low[j], high[j]) interleaved, so that the value is
    ``pairs[2j + [nxt[j] <= x]]``."""

    def __init__(self, t0: int, k: int, nxt: npt.NDArray[np.int64],
                 pairs: npt.NDArray[Any]) -> None:
        self.t0, self.k, self.nxt, self.pairs = t0, k, nxt, pairs
        self.last = np.int32(nxt.size - 1)

    def __call__(self, x: npt.NDArray[Any], work: npt.NDArray[np.int64],
                 j: npt.NDArray[np.int32]) -> npt.NDArray[Any]:
        """The looked-up values of block ``x`` (values within the declared input format);
        ``work`` an int64 and ``j`` an int32 buffer of x's shape.

        The bucket index in int32: u = (x - t0) + 2^63 lies in [0, 2^64) (|x - t0| < 2^63,
        plan time), so the uint64 sum is exact and its logical shift is
        ⌊u/2^k⌋ = ⌊(x - t0)/2^k⌋ + 2^(63-k); with k <= 31 the offset is 0 modulo 2^32, and
        the low 32 bits are j itself (j fits int32: plan time)."""
        u = work.view(np.uint64)
        np.add(x, np.uint64((2**63 - self.t0) % 2**64), out=u, dtype=np.uint64,
               casting="unsafe")  # modulo 2^64, the true sum in [0, 2^64)
        np.right_shift(u, np.uint64(self.k), out=u)
        np.copyto(j.view(np.uint32), u, casting="unsafe")  # low 32 bits: j
        np.clip(j, np.int32(0), self.last, out=j)  # into the buckets
        step = np.take(self.nxt, j) <= x
        np.left_shift(j, np.int32(1), out=j)
        np.add(j, step, out=j)  # 2j + [nxt[j] <= x] < 2·buckets: plan time
        out: npt.NDArray[Any] = np.take(self.pairs, j)
        return out


def bucket_lookup(t: npt.NDArray[np.int64], table: npt.NDArray[Any], offset: int,
                  x_min: int, x_max: int) -> BucketLookup | None:
    """The bucket tables for thresholds ``t`` (sorted), ``table`` and ``offset``, inputs in
    [x_min, x_max]; None where they do not apply (module docstring, :class:`BucketLookup`)
    or would be large."""
    n = int(t.size)
    if n < 2 or x_max >= 2**63 - 1:
        return None
    gap = int(np.diff(t).min())
    if gap < 1:
        return None
    if offset > 0 or n - offset >= table.size:
        return None  # some code would not index the table: the plain ops check
    t0 = int(t[0])
    if x_min - t0 < -(2**63) or x_max - t0 >= 2**63:
        return None
    k = gap.bit_length() - 1  # 2^k <= gap
    n_buckets = ((int(t[-1]) - t0) >> k) + 1
    if k > 31 or n_buckets > _MAX_BUCKETS_PER_THRESHOLD * n:
        return None
    if (x_min - t0) >> k < -(2**31) or (x_max - t0) >> k >= 2**31:
        return None  # j would not fit int32
    starts = np.int64(t0) + (np.arange(n_buckets, dtype=np.int64) << np.int64(k))
    start = np.searchsorted(t, starts, side="left").astype(np.int64)
    nxt = np.append(t, np.iinfo(np.int64).max)[start]  # +inf past the last: > every x
    codes = start - np.int64(offset)
    values = _narrowest(table)
    pairs = np.stack([values[codes],  # low[j]; high[j] below (start = n: never selected)
                      values[np.minimum(codes + 1, table.size - 1)]], axis=1).ravel()
    for arr in (nxt, pairs):
        arr.setflags(write=False)
    return BucketLookup(t0, k, nxt, pairs)


def _narrowest(table: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``table`` in the narrowest of (u)int8/16, int32 holding its values (exact), else as
    it is."""
    lo, hi = int(table.min()), int(table.max())
    for dt in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return table.astype(dt)
    return table


__all__ = ["BucketLookup", "bucket_lookup"]
