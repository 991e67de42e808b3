"""Kernel vs independent Python-int oracle, every variant: 0 mismatches."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from refq import ops, params
from refq.intmath import INT8, INT16, UINT8, IntFormat
from tests.ops import oracles as O


def rows(lo: int, hi: int, max_n: int = 24, max_rows: int = 3) -> st.SearchStrategy[Any]:
    return st.integers(1, max_n).flatmap(
        lambda n: st.lists(st.lists(st.integers(lo, hi), min_size=n, max_size=n),
                           min_size=1, max_size=max_rows))


def mixed(lo: int, hi: int) -> st.SearchStrategy[Any]:
    """Wide rows (saturation, clamps) or narrow rows (every stage active)."""
    return st.one_of(rows(max(lo, -40), min(hi, 40)), rows(max(lo, -300), min(hi, 300)),
                     rows(lo, hi))


def check(out: np.ndarray, expected: list[list[int]]) -> None:
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.int64), strict=True)


SCALES = st.sampled_from([2.0**-6, 0.0137, 0.05, 0.1, 0.3])


@given(rows(-128, 127), st.sampled_from(["double", "single", "dyadic"]),
       st.floats(1e-4, 0.9), st.integers(-128, 127), st.integers(-20, 20))
@example([[-128] * 5], "double", 0.5, 0, -128)
def test_requantize(data, family, real, zo, zi):
    x = np.array(data) * 65537
    rounding = "half_up" if family == "dyadic" else None  # TFLite fixes its roundings
    p = params.requant_params(real, family, in_zero_point=zi, out_zero_point=zo,
                              rounding=rounding)
    exp = [[O.requant(v, family, p.multiplier[0], p.shift[0], "half_up", zi, zo, -128, 127)
            for v in r] for r in x.tolist()]
    check(ops.requantize(x, p), exp)


@given(st.integers(1, 6), st.integers(1, 40), st.integers(1, 5), st.data(),
       st.sampled_from([INT8, UINT8, IntFormat(4, True)]))
def test_linear(m, k, n, data, fmt):
    ints = st.integers(fmt.min, fmt.max)
    x = data.draw(st.lists(st.lists(ints, min_size=k, max_size=k), min_size=m, max_size=m))
    w = data.draw(st.lists(st.lists(ints, min_size=k, max_size=k), min_size=n, max_size=n))
    bias = data.draw(st.lists(st.integers(-(2**20), 2**20), min_size=n, max_size=n))
    zx, zw = data.draw(ints), data.draw(ints)
    p = ops.GemmParams(fmt, fmt, zx, zw)
    exp = [[sum((x[i][t] - zx) * (w[j][t] - zw) for t in range(k)) + bias[j] for j in range(n)]
           for i in range(m)]
    check(ops.linear(np.array(x), np.array(w), np.array(bias), p), exp)
    a = np.array(x)[None]
    b = np.array(w).T[None]
    expm = [[[sum((x[i][t] - zx) * (w[j][t] - zw) for t in range(k)) for j in range(n)]
             for i in range(m)]]
    check(ops.matmul(a, b, p), expm)


@given(rows(-128, 127), rows(-128, 127), st.sampled_from(["ivit", "shared_shift"]),
       st.floats(0.01, 2.0), st.floats(0.01, 2.0))
def test_add(da, db, scheme, sa, sb):
    n = min(len(da[0]), len(db[0]))
    a = np.array([r[:n] for r in da[:1]])
    b = np.array([r[:n] for r in db[:1]])
    p = params.add_params(sa, sb, 1.0, scheme, a_zero_point=3, b_zero_point=-5,
                          out_zero_point=1)
    exp = []
    for va, vb in zip(a[0].tolist(), b[0].tolist(), strict=True):
        if scheme == "ivit":
            y = (O.rshift_round((va - 3) * p.a_multiplier, p.a_shift, "half_even")
                 + O.rshift_round((vb + 5) * p.b_multiplier, p.b_shift, "half_even"))
        else:
            y = O.rshift_round((va - 3) * p.a_multiplier + (vb + 5) * p.b_multiplier, p.a_shift,
                               "half_even")
        exp.append(max(-128, min(127, y + 1)))
    check(ops.add(a, b, p), [exp])


@given(mixed(-128, 127), st.floats(1 / 1024, 1 / 8))
@example([[-128] * 7], 1 / 255)
@example([[5] * 9], 0.05)
@example([[127] + [-128] * 10], 0.1)
def test_softmax_tflite(data, s):
    p = params.tflite_softmax_params(s)
    exp = [O.softmax_tflite(r, p.input_multiplier, p.input_left_shift, p.diff_min) for r in data]
    check(ops.softmax(np.array(data), p, "tflite"), exp)


@given(mixed(-2000, 2000), SCALES)
@example([[-2000] * 6], 0.05)
@example([[2000] + [-2000] * 12], 0.1)
def test_softmax_ibert(data, s):
    p = params.ibert_softmax_params(s)
    exp = [O.softmax_ibert(r, p.x0_int, p.b_int, p.c_int, p.n, p.exp_multiplier, p.exp_shift,
                           p.out_bits) for r in data]
    check(ops.softmax(np.array(data), p, "ibert"), exp)


@given(mixed(-2000, 2000), SCALES)
@example([[-2000] * 6], 0.05)
@example([[2000] + [-2000] * 12], 0.1)
def test_softmax_lis(data, s):
    p = params.lis_params(s)
    exp = [O.softmax_lis(r, p.x0_int, p.b_int, p.c_int, p.n, p.bits) for r in data]
    check(ops.softmax(np.array(data), p, "lis"), exp)


@given(mixed(-3000, 3000), SCALES, st.booleans())
@example([[-3000] * 6], 0.05, False)
@example([[3000] + [-3000] * 12], 0.1, True)
def test_softmax_shiftmax(data, s, deploy):
    p = params.shiftmax_params(s, deploy=deploy)
    exp = [O.softmax_shift(r, p.x0_int, p.n, p.out_bits, deploy) for r in data]
    out = ops.softmax(np.array(data), p, "shiftmax_deploy" if deploy else "shiftmax")
    check(out, exp)


@given(mixed(INT16.min, INT16.max), SCALES)
@example([[-32768] * 6], 0.05)
@example([[32767] + [-32768] * 12], 0.3)
def test_softmax_refq(data, s):
    p = params.refq_softmax_params(s)
    exp = [O.softmax_refq(r, p.log2e_multiplier, p.log2e_shift, list(p.table), p.out_bits)
           for r in data]
    check(ops.softmax(np.array(data), p, "refq"), exp)


@given(mixed(-3000, 3000), SCALES)
@example([[-3000, 0, 3000]], 0.05)
def test_gelu_ibert(data, s):
    p = params.ibert_gelu_params(s)
    exp = [[O.gelu_ibert(v, p.b_int, p.c_int, p.shift_int) for v in r] for r in data]
    check(ops.gelu(np.array(data), p, "ibert"), exp)


@given(mixed(-3000, 3000), SCALES)
@example([[-3000] * 4], 0.05)
@example([[-5, -7, -100]], 0.01)
def test_gelu_shiftgelu(data, s):
    p = params.shiftgelu_params(s)
    exp = [O.gelu_shift(r, p.x0_int, p.n, p.out_bits) for r in data]
    check(ops.gelu(np.array(data), p, "shiftgelu"), exp)


def test_gelu_lut_matches_table():
    p = params.gelu_lut_params(0.05, 3, 0.03, -10)
    x = np.arange(-128, 128)
    check(ops.gelu(x[None], p, "lut"), [list(p.table)])


@given(rows(-128, 127, max_n=40), st.sampled_from(["refq", "ibert", "ivit"]),
       st.integers(-5, 5), st.sampled_from(["plain", "ptf", "o2sf"]), st.data())
@example([[-128] * 8], "refq", 0, "plain", None)
@example([[7] * 8], "ibert", 0, "plain", None)
@example([[7] * 8], "ivit", 0, "plain", None)
@example([[127, -128] * 8], "refq", 0, "o2sf", None)
def test_layernorm(data, variant, zp, form, d):
    c = len(data[0])
    if form == "ptf":
        shifts = [i % 4 for i in range(c)]
    elif form == "o2sf":
        shifts = list(params.o2sf_channel_shift([i % 5 == 0 for i in range(c)], 4))
    else:
        shifts = [0]
    bias = [(-1) ** i * i * 1000 for i in range(c)]
    p = params.layernorm_params(zero_point=zp, channel_shift=tuple(shifts), bias=tuple(bias),
                                var_shift=2 if variant == "ibert" else 0)
    exp = [O.layernorm(r, variant, zp, shifts, bias, p.var_shift, p.frac_bits) for r in data]
    check(ops.layernorm(np.array(data), p, variant), exp)
