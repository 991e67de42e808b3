"""Integer data-movement and table ops of a Program: pure functions of int64 arrays and
integer parameters (no arithmetic beyond indexing, comparisons and shifts).

Each takes its inputs positionally and its params as keywords and returns a tuple of
outputs. ``-1`` in a shape stands for the batch dimension.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refq.errors import RangeError, SpecError
from refq.intmath import IntArray


def reshape(x: IntArray, *, shape: list[int]) -> tuple[IntArray]:
    """Row-major reshape; a leading -1 keeps the batch size."""
    return (x.reshape([x.shape[0] if (i == 0 and d == -1) else d for i, d in enumerate(shape)]),)


def transpose(x: IntArray, *, perm: list[int]) -> tuple[IntArray]:
    """Axes permuted: output axis i is input axis ``perm[i]`` (NumPy ``transpose``), values
    unchanged (e.g. (B, N, H, d) → (B, H, N, d) for the heads, kᵀ for q@kᵀ)."""
    return (np.ascontiguousarray(np.transpose(x, perm)),)


def split(x: IntArray, *, axis: int, sections: int) -> tuple[IntArray, ...]:
    """Split into ``sections`` equal parts along ``axis`` (qkv → q, k, v)."""
    if x.shape[axis] % sections:
        raise SpecError(f"split: axis {axis} of size {x.shape[axis]} not divisible by {sections}")
    return tuple(np.ascontiguousarray(p) for p in np.split(x, sections, axis=axis))


def prepend(x: IntArray, token: IntArray) -> tuple[IntArray]:
    """(B, N, D) and (1, k, D) → (B, k + N, D): class/distillation tokens in front."""
    tok = np.broadcast_to(token, (x.shape[0], *token.shape[1:]))
    return (np.concatenate([tok, x], axis=1),)


def patchify(x: IntArray, *, patch: int) -> tuple[IntArray]:
    """(B, C, H, W) → (B, (H/p)·(W/p), C·p·p), patches row-major, each flattened (C, p, p)
    like a conv weight (out, C, p, p) — so patch embedding is a linear layer."""
    b, c, h, w = x.shape
    if h % patch or w % patch:
        raise SpecError(f"patchify: image {h}x{w} not divisible by patch {patch}")
    y = x.reshape(b, c, h // patch, patch, w // patch, patch).transpose(0, 2, 4, 1, 3, 5)
    return (np.ascontiguousarray(y.reshape(b, (h // patch) * (w // patch), c * patch * patch)),)


def select(x: IntArray, *, axis: int, index: int) -> tuple[IntArray]:
    """x.take(index, axis) (e.g. the class token)."""
    return (np.ascontiguousarray(np.take(x, index, axis=axis)),)


def _grid(x: IntArray, side: int, op: str) -> IntArray:
    """(B, side², C) tokens (row-major over a side × side grid) as (B, side, side, C)."""
    if x.ndim != 3 or side < 1 or x.shape[1] != side * side:
        raise SpecError(f"{op}: expected (B, {side}x{side}, C) tokens, got shape {x.shape}")
    return x.reshape(x.shape[0], side, side, x.shape[2])


def roll(x: IntArray, *, side: int, shift: int) -> tuple[IntArray]:
    """Swin's cyclic shift: tokens (B, side², C) on their side × side grid rolled by
    ``shift`` along both grid axes (out[i, j] = x[(i - shift) mod side, (j - shift) mod side],
    ``np.roll``'s convention; Swin rolls by -w/2 before the window attention, +w/2 after)."""
    g = _grid(x, side, "roll")
    y = np.roll(g, (shift, shift), axis=(1, 2))
    return (np.ascontiguousarray(y.reshape(x.shape)),)


def window_partition(x: IntArray, *, side: int, window: int) -> tuple[IntArray]:
    """(B, side², C) → (B·W, window², C): the side × side grid cut into W = (side/window)²
    windows, row-major, each window's tokens row-major; the windows of one image are
    consecutive."""
    g = _grid(x, side, "window_partition")
    if window < 1 or side % window:
        raise SpecError(f"window_partition: side {side} not divisible by window {window}")
    b, c, k = x.shape[0], x.shape[2], side // window
    y = g.reshape(b, k, window, k, window, c).transpose(0, 1, 3, 2, 4, 5)
    return (np.ascontiguousarray(y.reshape(b * k * k, window * window, c)),)


def window_reverse(x: IntArray, *, side: int, window: int) -> tuple[IntArray]:
    """(B·W, window², C) → (B, side², C): the inverse of :func:`window_partition`."""
    if window < 1 or side % window:
        raise SpecError(f"window_reverse: side {side} not divisible by window {window}")
    k = side // window
    if x.ndim != 3 or x.shape[1] != window * window or x.shape[0] % (k * k):
        raise SpecError(f"window_reverse: expected (B·{k * k}, {window * window}, C) windows, "
                        f"got shape {x.shape}")
    b, c = x.shape[0] // (k * k), x.shape[2]
    y = x.reshape(b, k, k, window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return (np.ascontiguousarray(y.reshape(b, side * side, c)),)


def patch_merge(x: IntArray, *, side: int) -> tuple[IntArray]:
    """Swin patch merging's gather: (B, side², C) → (B, (side/2)², 4C), each output token
    the concatenation of its 2 × 2 neighbours in the order (0,0), (1,0), (0,1), (1,1) (row
    offset first), as timm, Hugging Face and the original code concatenate them."""
    g = _grid(x, side, "patch_merge")
    if side % 2:
        raise SpecError(f"patch_merge: side {side} is odd")
    parts = [g[:, 0::2, 0::2], g[:, 1::2, 0::2], g[:, 0::2, 1::2], g[:, 1::2, 1::2]]
    y = np.concatenate(parts, axis=-1)
    h = side // 2
    return (np.ascontiguousarray(y.reshape(x.shape[0], h * h, 4 * x.shape[2])),)


def window_mask(x: IntArray, mask: IntArray, *, value: int) -> tuple[IntArray]:
    """Swin's shifted-window attention mask: x (B·W, H, n, n) logits, ``mask`` (W, n, n) of
    0/1; every lane whose window's mask is 1 becomes ``value``, the others are x's."""
    if mask.ndim != 3 or x.ndim != 4 or x.shape[0] % mask.shape[0] or (
            x.shape[2:] != mask.shape[1:]):
        raise SpecError(f"window_mask: logits {x.shape} and mask {mask.shape} do not match")
    w = mask.shape[0]
    g = x.reshape(x.shape[0] // w, w, *x.shape[1:])
    m = (mask != 0)[None, :, None]
    return (np.where(m, np.int64(value), g).reshape(x.shape),)


def mean_pool(x: IntArray, *, axis: int, shift: int) -> tuple[IntArray]:
    """Sum over ``axis`` then an arithmetic right shift (floor) by ``shift`` (a power-of-two
    token count; ``shift = 0``: the exact sum, whose division by the token count a later
    requantization or quantizer carries); the caller declares the output format."""
    return (np.sum(x, axis=axis) >> np.int64(shift),)


def threshold(x: IntArray, thresholds: IntArray) -> tuple[IntArray]:
    """codes = number of thresholds t with t <= x (thresholds sorted ascending): a quantizer
    realised by explicit integer decision thresholds."""
    t = thresholds.ravel()
    if t.size > 1 and bool(np.any(np.diff(t) < 0)):
        raise SpecError("threshold: thresholds must be sorted ascending")
    if t.size >= _BUCKET_MIN_T and x.size >= _BUCKET_MIN_X:
        dense = _dense_count(x, t)
        if dense is not None:
            return (dense,)
    return (_tableless_count(x, t),)


def _tableless_count(x: IntArray, t: IntArray) -> IntArray:
    """#{t <= x} without a table over x's range: the bucket paths, else searchsorted."""
    codes = _bucket_count(x, t) if t.size >= _BUCKET_MIN_T and x.size >= _BUCKET_MIN_X else None
    return codes if codes is not None else np.searchsorted(t, x, side="right").astype(np.int64)


_BUCKET_MIN_T = 16
_BUCKET_MIN_X = 1 << 12
_BUCKET_PASSES = 3


def _dense_count(x: IntArray, t: IntArray) -> IntArray | None:
    """#{t <= x} through a decision table over the values' own range [lo, hi]:
    ``table[v - lo] = #{t <= v}`` (one searchsorted over the range), then one gather; exact.
    None when the range is wider than the tensor (the table would cost more than it saves)
    or beyond 2^20 entries."""
    lo, hi = int(x.min()), int(x.max())
    if not _table_fits(x, lo, hi):
        return None
    codes: IntArray = _count_table(t, lo, hi)[x - np.int64(lo)]  # 0 <= x - lo <= hi - lo
    return codes


def _table_fits(x: IntArray, lo: int, hi: int) -> bool:
    """Whether a table over [lo, hi] is worth building: no wider than the tensor, <= 2^20."""
    span = hi - lo + 1
    return span <= x.size and span <= 1 << 20


def _count_table(t: IntArray, lo: int, hi: int) -> IntArray:
    """``table[v - lo] = #{t <= v}`` for every v in [lo, hi] (one searchsorted)."""
    return np.searchsorted(t, np.arange(lo, hi + 1, dtype=np.int64), side="right").astype(
        np.int64)


def _single_pass_count(x: IntArray, t: IntArray, span: int) -> IntArray | None:
    """#{t <= x} in one pass when the thresholds are strictly increasing with gaps >= 2^k
    for a bucket width 2^k giving at most 16 buckets per threshold (e.g. a uniform
    quantizer's evenly spaced thresholds).

    Then a bucket [t0 + j·2^k, t0 + (j+1)·2^k) holds at most one threshold, the first one
    not counted by ``start[j]`` = #{t < t0 + j·2^k}: for x in bucket j (x clamped to
    [t0, t_last], which keeps every count), #{t <= x} = start[j] + [next[j] <= x] with
    next[j] = t[start[j]] (int64 max where start[j] = n). Exact; None when not applicable.
    """
    n = t.size
    if n < 2:
        return None
    gap = int(np.diff(t).min())
    if gap < 1:
        return None
    k = gap.bit_length() - 1  # 2^k <= gap
    n_buckets = (span >> k) + 1
    if n_buckets > 16 * n or n_buckets > 1 << 20:
        return None
    start, j = _buckets(x, t, k, n_buckets)
    nxt = np.append(t, np.iinfo(np.int64).max)[start]
    code: IntArray = start[j]
    code += nxt[j] <= x
    return code


def _buckets(x: IntArray, t: IntArray, k: int, n_buckets: int) -> tuple[IntArray, IntArray]:
    """Buckets of width 2^k from t0 = t[0]: ``start[j]`` = #{t < t0 + j·2^k} (one
    searchsorted over the bucket starts) and each element's bucket j, x clamped to
    [t0, t_last] first (then 0 <= x - t0 <= span: no overflow)."""
    starts = np.int64(t[0]) + (np.arange(n_buckets, dtype=np.int64) << np.int64(k))
    start = np.searchsorted(t, starts, side="left").astype(np.int64)
    j = np.clip(x, t[0], t[-1])
    j -= np.int64(t[0])
    j >>= np.int64(k)
    return start, j


def _bucket_count(x: IntArray, t: IntArray) -> IntArray | None:
    """#{t <= x} by a bucket table then at most ``_BUCKET_PASSES`` step-up passes, exact.

    Buckets of width 2^k cover [t0, t_last]; ``start[j]`` = #{t < t0 + j·2^k} (by one
    searchsorted over the bucket starts). An element x in bucket j (clamped to the first and
    last bucket) has count start[j] + #{t in its bucket with t <= x}: each pass adds 1 where
    the next threshold t[count] is <= x. Elements still stepping after the last pass (buckets
    holding many thresholds, e.g. log-spaced ones) are recounted by searchsorted. Every step
    is an integer comparison; None when the table would not be small.
    """
    n = t.size
    span = int(t[-1]) - int(t[0])
    if x.ndim == 0 or span >= 1 << 62:
        return None
    single = _single_pass_count(x, t, span)
    if single is not None:
        return single
    k = max(0, (span // (4 * n)).bit_length())  # about 4 buckets per threshold or fewer
    n_buckets = (span >> k) + 1
    if n_buckets > 16 * n:
        return None
    start, j = _buckets(x, t, k, n_buckets)
    code: IntArray = start[j]
    del j
    tpad = np.append(t, t[-1])  # t[n] is never compared (count == n is masked out)
    for _ in range(_BUCKET_PASSES):
        step = tpad[code] <= x
        step &= code < n
        if not step.any():
            return code
        code += step
    step = tpad[code] <= x
    step &= code < n
    if step.any():
        idx = np.flatnonzero(step.ravel())
        code.ravel()[idx] = np.searchsorted(t, x.ravel()[idx], side="right")
    return code


def lookup(x: IntArray, table: IntArray, *, offset: int) -> tuple[IntArray]:
    """y = table[x - offset]; every index must lie in the table (else RangeError)."""
    idx = x - np.int64(offset)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= table.shape[-1]):
        raise RangeError(f"lookup: index outside a table of {table.shape[-1]} entries")
    return (table.ravel()[idx] if table.ndim == 1 else np.take_along_axis(table, idx, -1),)


def threshold_lookup(
    x: IntArray, thresholds: IntArray, table: IntArray, *, offset: int
) -> IntArray | None:
    """``lookup(threshold(x, thresholds), table, offset)`` in one gather, or None.

    One composite decision table over the values' own range [lo, hi]:
    ``composite[v - lo] = table[#{t <= v} - offset]``, then ``composite[x - lo]`` — the same
    integers as the two ops (each element's code is the count of thresholds <= it, looked
    up in ``table``). When the range is wider than the tensor or 2^20: the codes by
    :func:`threshold`'s bucket paths, then ``table[code - offset]`` in one gather, provided
    every possible code 0..n indexes ``table``. None (the caller runs the two ops, which
    raise their own errors) when the thresholds are not one sorted vector, ``table`` is not
    1-D, or some value of the range (some code) would index outside ``table`` — so no error
    of the two-op form is hidden.
    """
    t = thresholds.ravel()
    if table.ndim != 1 or x.size < _BUCKET_MIN_X or t.size == 0:
        return None
    if t.size > 1 and bool(np.any(np.diff(t) < 0)):
        return None
    lo, hi = int(x.min()), int(x.max())
    if not _table_fits(x, lo, hi):
        # codes by the bucket paths; every code 0..n indexes the table: one gather
        if -offset < 0 or t.size - offset >= table.shape[0]:
            return None
        per_code = table[np.arange(t.size + 1, dtype=np.int64) - np.int64(offset)]
        by_code: IntArray = per_code[_tableless_count(x, t)]
        return by_code
    idx = _count_table(t, lo, hi)
    idx -= offset
    if int(idx.min()) < 0 or int(idx.max()) >= table.shape[0]:
        return None
    composite = table[idx]
    out: IntArray = composite[x - np.int64(lo)]
    return out


def shift_left(x: IntArray, *, shift: int) -> tuple[IntArray]:
    """x · 2^shift (exact; the caller declares a wide enough format)."""
    return (x << np.int64(shift),)


def add_exact(a: IntArray, b: IntArray) -> tuple[IntArray]:
    """a + b exactly (two matmul branches joined after aligning their scales by a shift)."""
    return (a + b,)


_INT64_MAX = (1 << 63) - 1


def _max_abs(v: IntArray) -> int:
    """max |v| as a Python int (0 for an empty array; |-2^63| does not wrap)."""
    a = np.asarray(v)
    return max(-int(a.min()), int(a.max())) if a.size else 0


def affine(x: IntArray, m: IntArray, b: IntArray) -> tuple[IntArray]:
    """x · m + b exactly, m and b integer constants broadcast against x (e.g. per channel:
    LayerNorm γ and β at a fixed-point scale; a bias too wide for int32 added after a GEMM).
    The caller declares a wide enough output format (checked by run).

    Width: computed in int64. max|x|·max|m| + max|b| <= 2^63 - 1 (Python integers) proves
    the product and the sum exact; otherwise the exact result is computed on Python
    integers and a value outside int64 is a RangeError naming ``affine`` — never a value
    wrapped modulo 2^64 (which could land inside the declared format unnoticed).
    """
    if _max_abs(x) * _max_abs(m) + _max_abs(b) <= _INT64_MAX:
        return (x * m + b,)
    exact = (np.asarray(x).astype(object) * np.asarray(m).astype(object)
             + np.asarray(b).astype(object))
    lo, hi = (int(exact.min()), int(exact.max())) if exact.size else (0, 0)
    if lo < -_INT64_MAX - 1 or hi > _INT64_MAX:
        raise RangeError(f"affine: x·m + b reaches [{lo}, {hi}], outside int64")
    return (exact.astype(np.int64),)


MOVEMENT: dict[str, Callable[..., tuple[IntArray, ...]]] = {
    "reshape": reshape,
    "transpose": transpose,
    "split": split,
    "prepend": prepend,
    "patchify": patchify,
    "select": select,
    "mean_pool": mean_pool,
    "roll": roll,
    "window_partition": window_partition,
    "window_reverse": window_reverse,
    "patch_merge": patch_merge,
    "window_mask": window_mask,
    "threshold": threshold,
    "lookup": lookup,
    "shift_left": shift_left,
    "add_exact": add_exact,
    "affine": affine,
}


VALUE_PRESERVING = frozenset({"reshape", "transpose", "split", "select", "patchify", "roll",
                              "window_partition", "window_reverse", "patch_merge"})
"""Movement ops whose outputs hold only values of their (single) input: an output's range
is its input's (refq.program.run skips the element-wise check when the input's declared
format fits the output's)."""


def movement(key: str) -> Callable[..., tuple[IntArray, ...]]:
    if key not in MOVEMENT:
        raise SpecError(f"unknown program op {key!r}; known: {sorted(MOVEMENT)}")
    return MOVEMENT[key]


__all__ = ["MOVEMENT", "VALUE_PRESERVING", "movement"]
