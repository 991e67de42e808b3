"""The speed paths of the integer kernels give the same bits as plain Python-int arithmetic.

Covers (refq.intmath.rounding) the nudge-and-shift ``round_shift`` for scalar and per-axis
shifts, the per-divisor reciprocal ``round_div`` / ``round_div_shifted`` (including the
ambiguous elements recomputed exactly: ties, exact quotients, zeros), (refq.intmath.formats)
``check_bounds``, and (refq.ops) the softmax (k, j) exp table and LayerNorm's normalized
isqrt. Oracles: tests/intmath/oracle.py ``round_rational`` (Fraction) and ``math.isqrt``.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refq import ops, params
from refq.errors import RangeError, SpecError
from refq.intmath import INT8, INT32, ROUNDINGS, IntFormat, round_div, round_shift
from refq.intmath.formats import check_bounds
from refq.intmath.rounding import round_div_shifted
from refq.ops.softmax_refq import RefqSoftmaxParams
from tests.intmath.oracle import round_rational
from tests.ops import oracles as O

I64 = st.integers(-(2**63), 2**63 - 1)
MODE = st.sampled_from(ROUNDINGS)
LN = sys.modules["refq.ops.layernorm"]
SM = sys.modules["refq.ops.softmax_refq"]


def _grid(x: list[list[int]]) -> np.ndarray:
    return np.array(x, dtype=np.int64)


# ---- round_shift: scalar and per-axis shifts --------------------------------------------
@given(xs=st.lists(I64, min_size=1, max_size=12), shift=st.integers(0, 63), mode=MODE)
@example(xs=[5, 7, -5, -7, 6, -6], shift=1, mode="half_even")  # ties both ways
@example(xs=[5, -5, 3, -3], shift=1, mode="half_away")
@example(xs=[-1, -2, -3, 1, 2, 3], shift=1, mode="trunc")
@example(xs=[-1, 1, 0, -(2**63)], shift=0, mode="half_even")  # shift 0
@example(xs=[2**63 - 1, 2**62, -(2**63)], shift=62, mode="half_up")  # no nudge room
@example(xs=[2**63 - 1, -(2**63), -(2**62)], shift=63, mode="half_even")  # max shift
@example(xs=[2**63 - 1, 2**63 - 2**61], shift=62, mode="ceil")
def test_round_shift_scalar_shift(xs: list[int], shift: int, mode: str) -> None:
    got = round_shift(np.array(xs, dtype=np.int64), shift, mode)  # type: ignore[arg-type]
    want = np.array([round_rational(x, 1 << shift, mode) for x in xs], dtype=np.int64)
    np.testing.assert_array_equal(got, want, strict=True)


@given(
    data=st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(I64, min_size=n, max_size=n), min_size=1, max_size=4),
            st.lists(st.integers(0, 63), min_size=n, max_size=n),
        )
    ),
    mode=MODE,
)
@example(data=([[5, -5, 6], [7, -7, -6]], [1, 1, 2]), mode="half_even")
@example(data=([[3, -3, 1, -1]], [0, 1, 2, 63]), mode="half_away")
@example(data=([[2**63 - 1, -(2**63)]], [0, 62]), mode="half_up")
@example(data=([[-(2**63), 2**63 - 1]], [63, 63]), mode="trunc")
def test_round_shift_per_axis_shift(data: tuple[list[list[int]], list[int]], mode: str) -> None:
    x, s = _grid(data[0]), np.array([data[1]], dtype=np.int64)  # s shape (1, n): per column
    got = round_shift(x, s, mode)  # type: ignore[arg-type]
    want = _grid([[round_rational(v, 1 << k, mode) for v, k in zip(r, data[1], strict=True)]
                  for r in data[0]])
    np.testing.assert_array_equal(got, want, strict=True)


def test_round_shift_zero_shift_broadcasts_and_copies() -> None:
    x = np.arange(3, dtype=np.int64)
    got = round_shift(x, np.zeros((2, 1), dtype=np.int64), "half_even")
    np.testing.assert_array_equal(got, np.stack([x, x]), strict=True)
    got[0, 0] = 99
    assert x[0] == 0


# ---- round_div with a per-row divisor ----------------------------------------------------
def _rows_div(a: list[list[int]], b: list[int], mode: str) -> np.ndarray:
    return _grid([[round_rational(v, d, mode) for v in r] for r, d in zip(a, b, strict=True)])


ROWS = st.integers(1, 8).flatmap(
    lambda n: st.lists(
        st.tuples(st.lists(I64, min_size=n, max_size=n), st.integers(1, 2**63 - 1)),
        min_size=1, max_size=4,
    )
)
SMALL_ROWS = st.integers(1, 8).flatmap(
    lambda n: st.lists(
        st.tuples(st.lists(st.integers(-(2**31), 2**31), min_size=n, max_size=n),
                  st.integers(1, 2**31)),
        min_size=1, max_size=4,
    )
)


SMALL_DIVISORS = st.integers(1, 8).flatmap(  # the nudge path: 4·b·(|a| + 1) <= 2^P
    lambda n: st.lists(
        st.tuples(st.lists(st.integers(-(2**20), 2**20), min_size=n, max_size=n),
                  st.integers(1, 2**10)),
        min_size=1, max_size=4,
    )
)


@given(rows=st.one_of(ROWS, SMALL_ROWS, SMALL_DIVISORS), mode=MODE)
@example(rows=[([1, 3, 5, -1, -3, -5, 0], 2)], mode="half_even")  # ties and a zero
@example(rows=[([1, 3, 5, -1, -3, -5, 0], 2)], mode="half_up")
@example(rows=[([6, -6, 9, 0, 3, -3], 3), ([14, -14, 7, 21, -7, 0], 7)], mode="floor")
@example(rows=[([6, -6, 9, 0, 3, -3], 3), ([14, -14, 7, 21, -7, 0], 7)], mode="ceil")
@example(rows=[([3, 9, -3, -9, 15, 0], 6), ([5, -5, 15, -15, 1, 2], 10)], mode="half_up")
@example(rows=[([1023, 1024, -1023, -1024, 0, 2**20, -(2**20)], 1024)], mode="floor")
@example(rows=[([1023, 1024, -1023, -1024, 0, 2**20, -(2**20)], 1024)], mode="ceil")
@example(rows=[([511, 512, 513, -511, -512, -513], 1024), ([1, -1, 0, 2, -2, 7], 1)],
         mode="half_up")
@example(rows=[([1, 3, 5, -1, -3, -5, 0], 2)], mode="half_away")
@example(rows=[([6, -6, 7, -7, 0], 3), ([10, -10, 0, 1, 2], 5)], mode="ceil")  # exact quotients
@example(rows=[([6, -6, 7, -7, 0], 3)], mode="trunc")
@example(rows=[([2**63 - 1, -(2**63)], 1)], mode="half_up")  # divisor 1
@example(rows=[([2**63 - 1, -(2**63), 2**62], 2**62)], mode="half_even")
@example(rows=[([255 * 2**15, 255, 0, 127 * 3], 2**15 + 3)], mode="half_up")  # softmax-like
def test_round_div_per_row_divisor(rows: list[tuple[list[int], int]], mode: str) -> None:
    a = [r for r, _ in rows]
    b = [d for _, d in rows]
    got = round_div(_grid(a), np.array(b, dtype=np.int64)[:, None], mode)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, _rows_div(a, b, mode), strict=True)


@given(rows=st.one_of(ROWS, SMALL_ROWS, SMALL_DIVISORS), mode=MODE)
@example(rows=[([1, 3, 5, -1, -3, -5, 0], 2)], mode="half_away")  # ties, quotient sign flips
@example(rows=[([6, -6, 7, -7, 0], 3)], mode="trunc")
@example(rows=[([-(2**63), 5], 7)], mode="floor")  # -a does not fit: RangeError
def test_round_div_negative_divisors(rows: list[tuple[list[int], int]], mode: str) -> None:
    a = [r for r, _ in rows]
    b = [-d for _, d in rows]
    if any(v == -(2**63) for r in a for v in r):  # documented: -a does not fit int64
        with pytest.raises(RangeError, match="-2\\^63"):
            round_div(_grid(a), np.array(b, dtype=np.int64)[:, None], mode)  # type: ignore[arg-type]
        return
    want = _rows_div(a, b, mode)
    got = round_div(_grid(a), np.array(b, dtype=np.int64)[:, None], mode)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, want, strict=True)
    got = round_div(_grid(a), b[0], mode)  # type: ignore[arg-type]  # scalar divisor
    np.testing.assert_array_equal(
        got, _grid([[round_rational(v, b[0], mode) for v in r] for r in a]), strict=True)


@given(
    rows=st.integers(1, 8).flatmap(
        lambda n: st.lists(
            st.tuples(
                st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n),
                st.integers(0, 40),
                st.integers(1, 2**62),
            ),
            min_size=1, max_size=4,
        )
    ),
    mode=MODE,
)
@example(rows=[([1, -1, 3, -3, 0], 0, 2)], mode="half_even")  # shift 0, ties
@example(rows=[([1, -1, 3, -3, 0, 5], 1, 4)], mode="half_even")  # ties after the shift
@example(rows=[([1, -1, 2**31 - 1, -(2**31)], 15, 2**30)], mode="half_even")  # LayerNorm-like
@example(rows=[([2**40, -(2**40)], 40, 1)], mode="floor")  # 2^80: result beyond int64
def test_round_div_shifted(rows: list[tuple[list[int], int, int]], mode: str) -> None:
    want_rows = []
    fits = True
    for r, s, d in rows:
        q = [round_rational(v << s, d, mode) for v in r]
        fits = fits and all(-(2**63) <= v <= 2**63 - 1 for v in q)
        want_rows.append(q)
    a = _grid([r for r, _, _ in rows])
    sh = np.array([[s] for _, s, _ in rows], dtype=np.int64)
    b = np.array([[d] for _, _, d in rows], dtype=np.int64)
    if not fits:
        with pytest.raises(RangeError):
            round_div_shifted(a, sh, b, mode)  # type: ignore[arg-type]
        return
    got = round_div_shifted(a, sh, b, mode)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, _grid(want_rows), strict=True)


def test_round_div_shifted_rejects_bad_divisor_and_shift() -> None:
    with pytest.raises(RangeError, match="divisor"):
        round_div_shifted(np.array([1]), 0, np.array([0]), "floor")
    with pytest.raises(SpecError, match="shift"):
        round_div_shifted(np.array([1]), -1, 1, "floor")


# ---- check_bounds --------------------------------------------------------------------------
@given(
    xs=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=30),
    bits=st.integers(2, 32),
)
@example(xs=[0, 127, -128], bits=8)
@example(xs=[0, 128, -129, 200], bits=8)
def test_check_bounds_int32_in_place(xs: list[int], bits: int) -> None:
    fmt = IntFormat(bits, True)
    arr = np.array(xs, dtype=np.int32)
    bad = [i for i, v in enumerate(xs) if not fmt.min <= v <= fmt.max]
    if not bad:
        check_bounds(arr, fmt, "t", "op")
        return
    needle = rf"op: tensor 't' value {xs[bad[0]]} at index \({bad[0]},\)"
    with pytest.raises(RangeError, match=needle):
        check_bounds(arr, fmt, "t", "op")


def test_check_bounds_rejects_floats() -> None:
    with pytest.raises(SpecError):
        check_bounds(np.array([1.5]), INT8, "t")


# ---- softmax refq: the (k, j) exp table ----------------------------------------------------
@given(table=st.lists(st.integers(0, 2**15), min_size=4, max_size=4), u=st.integers(0, 2**20))
@example(table=[2**15, 2**15, 2**15, 2**15], u=16 * 4)  # 2^15 / 2^16 = 1/2 → 1
@example(table=[2**15, 3, 2, 1], u=21 * 4 + 1)  # past the clamp
def test_exp_table_lookup_matches_formula(table: list[int], u: int) -> None:
    flat = SM._exp_table(tuple(table))
    assert flat is not None
    k, j = min(u >> 2, 20), u & 3
    want = round_rational(table[j], 1 << k, "half_up")
    assert int(np.take(flat, np.array([u]), mode="clip")[0]) == want


@given(
    data=st.lists(st.lists(st.integers(-(2**15), 2**15 - 1), min_size=3, max_size=3),
                  min_size=1, max_size=3),
    scale=st.sampled_from([2.0**-6, 0.05, 0.3, 4.0]),
)
@example(data=[[0, 0, 0]], scale=0.05)  # exact thirds: 85
@example(data=[[5, 5, -32768]], scale=4.0)  # exact halves, e = 0 elsewhere
def test_softmax_refq_matches_oracle_at_ties(data: list[list[int]], scale: float) -> None:
    p: RefqSoftmaxParams = params.refq_softmax_params(scale)
    got = ops.softmax(np.array(data), p, "refq")
    want = [O.softmax_refq(r, p.log2e_multiplier, p.log2e_shift, list(p.table), p.out_bits)
            for r in data]
    np.testing.assert_array_equal(got, _grid(want), strict=True)


# ---- LayerNorm refq: normalized isqrt, sum of squares -------------------------------------
NORM = st.integers(2**60, 2**62 - 1)


@given(ms=st.lists(st.one_of(NORM, st.just(0)), min_size=1, max_size=20))
@example(ms=[2**60, 2**62 - 1, 0])
@example(ms=[(2**30 + 5) ** 2, (2**30 + 5) ** 2 - 1, (2**30 + 5) ** 2 + 2 * (2**30 + 5)])
@example(ms=[(2**31 - 1) ** 2, (2**31 - 1) ** 2 - 1])
def test_isqrt_normalized(ms: list[int]) -> None:
    got = LN._isqrt_normalized(np.array(ms, dtype=np.int64))
    want = np.array([max(math.isqrt(m), 1) for m in ms], dtype=np.int64)
    np.testing.assert_array_equal(got, want, strict=True)


def test_isqrt_normalized_falls_back_outside_range() -> None:
    ms = [1, 2, 3, 99, 2**59, 2**63 - 1]
    got = LN._isqrt_normalized(np.array(ms, dtype=np.int64))
    np.testing.assert_array_equal(
        got, np.array([max(math.isqrt(m), 1) for m in ms], dtype=np.int64), strict=True)


@given(rows=st.integers(1, 6).flatmap(
    lambda n: st.lists(st.lists(st.integers(-128, 127), min_size=n, max_size=n),
                       min_size=1, max_size=3)),
       frac_bits=st.integers(1, 30))
@example(rows=[[1, -1, 1, -1]], frac_bits=1)  # s = 2^30 exactly
@example(rows=[[3, 3, 3]], frac_bits=15)  # constant row: v = 0
@example(rows=[[127, -128]], frac_bits=30)
def test_layernorm_refq_matches_oracle(rows: list[list[int]], frac_bits: int) -> None:
    p = LN.LayerNormParams(frac_bits=frac_bits, out_bits=64)
    got = ops.layernorm(np.array(rows), p, "refq")
    want = [O.layernorm(r, "refq", 0, [0], [0], frac=frac_bits) for r in rows]
    np.testing.assert_array_equal(got, _grid(want), strict=True)


def test_layernorm_sum_of_squares_overflow_raises() -> None:
    """Σy² beyond int63 raises RangeError naming the tensor (int64 would wrap)."""
    p = LN.LayerNormParams(in_format=INT32)  # a = x in int32, y = 4x - Σx in int40
    x = np.array([[2**31 - 1, -(2**31), 5, 7]])
    with pytest.raises(RangeError, match=r"'sum\(y\^2\)'.*index \(0, 0\)"):
        ops.layernorm(x, p, "refq")



@given(rows=st.lists(st.lists(st.integers(-(2**39) + 1, 2**39 - 1), min_size=1, max_size=6),
                     min_size=1, max_size=4).filter(lambda r: len({len(x) for x in r}) == 1))
@example(rows=[[2**39 - 1, -(2**39) + 1, -1, 0]])
@example(rows=[[-(2**16), 2**16 - 1, -1, 65535]])  # l at 0 and 0xFFFF, h at -1 and 0
@example(rows=[[2**31 - 1, 2**31]])  # Σy² near 2^63
def test_layernorm_row_sums_of_squares_exact(rows: list[list[int]]) -> None:
    """The split h·2^16 + l row sums equal Python's Σy² exactly (the overflow check of
    layernorm_refq's int63 sum(y^2) relies on it)."""
    from refq.ops.layernorm import _row_sums_of_squares

    y = np.array(rows, dtype=np.int64)
    got = _row_sums_of_squares(y, max(abs(t) for r in rows for t in r))
    assert got == [sum(t * t for t in r) for r in rows]


def test_layernorm_sum_of_squares_near_int63() -> None:
    """sum(y^2) is declared int63 (max 2^62 - 1): a row just inside passes with its exact
    value, the next one up raises."""
    from refq.ops.layernorm import _sum_of_squares

    top = 2**62 - 1
    k = math.isqrt(top // 2)  # 2k² <= top < 2(k + 1)²
    ok = np.array([[k, -k]], dtype=np.int64)
    assert int(_sum_of_squares(ok, k, "t")[0, 0]) == 2 * k * k
    near = np.array([[k, k + 1]], dtype=np.int64)
    if k * k + (k + 1) ** 2 <= top:
        assert int(_sum_of_squares(near, k + 1, "t")[0, 0]) == k * k + (k + 1) ** 2
    over = np.array([[k + 1, -(k + 1)]], dtype=np.int64)
    with pytest.raises(RangeError, match=r"sum\(y\^2\)"):
        _sum_of_squares(over, k + 1, "t")


_ELEM = st.one_of(st.integers(-300, 300), st.booleans(), st.integers(-300, 300).map(np.int16),
                  st.just(1.0))


@given(v=st.lists(_ELEM, min_size=1, max_size=8), lo=st.none() | st.integers(-200, 0),
       hi=st.none() | st.integers(0, 200))
@example(v=[0, 255, 256], lo=0, hi=255)  # one above hi
@example(v=[-1, 0], lo=0, hi=None)  # one below lo
@example(v=[1, True], lo=None, hi=None)  # a bool among ints
def test_need_ints_fast_path_matches_elementwise(
    v: list[object], lo: int | None, hi: int | None
) -> None:
    """need_ints (with its all-plain-ints fast path) accepts and refuses exactly what the
    element-wise need_int does, and names the first offending element."""
    from refq.ops._common import need_int, need_ints

    try:
        want: object = tuple(need_int(e, f"t[{i}]", lo, hi) for i, e in enumerate(v))
    except SpecError as e:
        want = str(e)
    try:
        got: object = need_ints(v, "t", lo, hi)
    except SpecError as e:
        got = str(e)
    assert got == want


# ---- softmax refq: cache-sized row blocks -------------------------------------------------
def test_softmax_refq_row_blocks_match_oracle_and_whole() -> None:
    """A tensor of several row blocks (and a partial last one) gives the Python-int oracle's
    rows (sampled) and the unblocked kernel's bits."""
    rng = np.random.default_rng(3)
    p: RefqSoftmaxParams = params.refq_softmax_params(0.02)
    x = rng.integers(-2000, 2000, (2, 5, 197, 197), dtype=np.int64)
    assert x.size > SM._BLOCK
    got = ops.softmax(x, p, "refq")
    whole = SM._softmax_rows(x, p, "softmax_refq")
    np.testing.assert_array_equal(got, whole, strict=True)
    rows = x.reshape(-1, 197)
    for i in (0, SM._BLOCK // 197 - 1, SM._BLOCK // 197, rows.shape[0] - 1):
        want = O.softmax_refq(rows[i].tolist(), p.log2e_multiplier, p.log2e_shift,
                              list(p.table), p.out_bits)
        np.testing.assert_array_equal(got.reshape(-1, 197)[i], np.array(want), strict=True)


def test_softmax_refq_row_block_error_names_the_whole_tensor_index() -> None:
    """sum(e) overflows int32 only in the LAST row (a row of 2^16 + 1 equal values): the
    RangeError names that row's index in the whole tensor, not in its block."""
    p: RefqSoftmaxParams = params.refq_softmax_params(0.02)
    n = 2**16 + 1
    x = np.full((3, n), -30000, dtype=np.int64)
    x[:2, 0] = 30000  # one dominant value: sum(e) = 2^15 + small
    x[2] = 0
    with pytest.raises(RangeError, match=r"sum\(e\).*index \(2, 0\)"):
        ops.softmax(x, p, "refq")


@given(
    rows=st.lists(st.lists(st.integers(-(2**38), 2**38 - 1), min_size=1, max_size=6),
                  min_size=1, max_size=4),
    limit_bits=st.integers(40, 62),
)
@example(rows=[[2**38 - 1] * 6], limit_bits=62)
@example(rows=[[-(2**30)] * 4, [0]], limit_bits=62)  # Σy² = 2^62 > int63 max: must be False
def test_layernorm_row_sums_fit_is_a_proof(rows: list[list[int]], limit_bits: int) -> None:
    """True only if every row's exact Σ y² (Python ints) is <= the limit; True for rows far
    below it (the fast path is taken in practice)."""
    c = max(len(r) for r in rows)
    y = np.array([r + [0] * (c - len(r)) for r in rows], dtype=np.int64)
    limit = (1 << limit_bits) - 1
    bound = max(abs(v) for r in rows for v in r)
    exact = [sum(v * v for v in r) for r in rows]
    if LN._row_sums_fit(y, bound, limit):
        assert max(exact) <= limit
    if max(exact) <= limit // 8 and max(exact) >= 2**40:
        assert LN._row_sums_fit(y, bound, limit)


def test_linear_bias_added_in_row_blocks_matches_oracle() -> None:
    """A per-channel bias over many rows (several row blocks and a partial last one)."""
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, (2, 50, 16))
    w = rng.integers(-128, 128, (1000, 16))
    bias = rng.integers(-(2**30), 2**30, 1000)
    got = ops.linear(x, w, bias, ops.GemmParams())
    want = np.array([[[sum(int(a) * int(b) for a, b in zip(row, wr, strict=True)) + int(bb)
                       for wr, bb in zip(w, bias, strict=True)] for row in img] for img in x])
    np.testing.assert_array_equal(got, want, strict=True)


# ---- LayerNorm refq: the per-row reciprocal quotient ----------------------------------------
@st.composite
def _quotient_rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Rows y with k, s meeting normalized_quotient's premise |y|·2^k <= s < 2^32."""
    f = draw(st.integers(1, 30))
    n_rows = draw(st.integers(1, 4))
    ys, ks, ss = [], [], []
    for _ in range(n_rows):
        s = draw(st.one_of(st.integers(1, 2**32 - 1), st.sampled_from([1, 2, 4, 2**31, 2**30])))
        k = draw(st.integers(0, s.bit_length() - 1))
        ymax = s >> k
        ys.append(draw(st.lists(st.integers(-ymax, ymax), min_size=3, max_size=3)))
        ks.append(k)
        ss.append(s)
    return (np.array(ys, dtype=np.int64), np.array(ks, dtype=np.int64)[:, None],
            np.array(ss, dtype=np.int64)[:, None], f)


@given(_quotient_rows())
@example((np.array([[1, 3, -1]]), np.array([[0]]), np.array([[4]]), 1))  # ±1/2, 3/2: ties
@example((np.array([[5, -5, 0]]), np.array([[2]]), np.array([[2**31 - 1]]), 30))
@example((np.array([[0, 0, 0]]), np.array([[0]]), np.array([[1]]), 15))  # v = 0
def test_layernorm_normalized_quotient_matches_fractions(
    case: tuple[np.ndarray, np.ndarray, np.ndarray, int],
) -> None:
    """round_half_even(y·2^(k+F)/s) by the reciprocal with exact fix-up, against Fractions,
    ties and exact quotients included."""
    y, k, s, f = case
    v = (y * y).sum(axis=-1, keepdims=True)
    got = LN.normalized_quotient(y.copy(), k, s, v, f)
    want = [[round_rational(int(e) << (int(k[r, 0]) + f), int(s[r, 0]), "half_even")
             for e in y[r]] for r in range(y.shape[0])]
    np.testing.assert_array_equal(got, _grid(want), strict=True)
