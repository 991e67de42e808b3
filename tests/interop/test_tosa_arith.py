"""The TOSA building blocks refq's export rests on, run on the TOSA reference model against
Python integers: TOSA's own semantics as used (MUL's wrapping low word and half-up high part,
the shifts), the exact 64-bit product and refq's six roundings of it, 64-bit add/compare/
clamp, and the interval proofs that refuse an op whose TOSA REQUIRE could fail."""

from __future__ import annotations

import numpy as np
import pytest

from tests.interop.tosa_extra import require

require("tosa_serializer", "tosa_reference_model")

from refq.interop.tosa import wide  # noqa: E402
from refq.interop.tosa.graph import I32, ExportError, Graph  # noqa: E402
from refq.interop.tosa.reference import run_reference  # noqa: E402
from refq.interop.tosa.requant import nearest  # noqa: E402
from refq.intmath import round_shift  # noqa: E402

N = 3000


def _edges(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(-(2**31), 2**31, N)
    y = rng.integers(-(2**31), 2**31, N)
    edge = [0, 1, -1, 2**31 - 1, -(2**31), 2**30, -(2**30), 3 << 29]
    x[: len(edge)] = edge
    y[: len(edge)] = edge[::-1]
    # small products with exact ties at many shifts
    x[100:400] = rng.integers(-(2**12), 2**12, 300) << rng.integers(0, 18, 300)
    y[100:400] = rng.integers(1, 2**10, 300) * 2 + 1
    return x, y


def _run(g: Graph, *arrays: np.ndarray) -> list[np.ndarray]:
    res = run_reference(g.serialize(), [a.astype(np.int32) for a in arrays])
    assert res.valid, res.reasons
    return [o.astype(np.int64) for o in res.outputs]


def _s32(v: np.ndarray) -> np.ndarray:
    u = np.asarray(v, dtype=object) % 2**32
    return np.asarray(np.where(u >= 2**31, u - 2**32, u), dtype=np.int64)


def test_tosa_mul_and_shift_semantics_the_export_relies_on() -> None:
    x, y = _edges(np.random.default_rng(0))
    g = Graph()
    a = g.input("a", (N,), "int32", *I32)
    b = g.input("b", (N,), "int32", *I32)
    outs = [g.mul(a, b, 0, wrap=True), g.mul(g.ars(a, 1), g.ars(b, 1), 31),
            g.shl(a, 7, wrap=True), g.lsr(a, 5), g.ars(a, 9, round_=True), g.clz(a)]
    for o in outs:
        g.output(o)
    got = _run(g, x, y)
    xo, yo = x.astype(object), y.astype(object)
    want = [
        _s32(xo * yo),  # MUL shift 0: the low 32 bits
        np.array([((p >> 1) * (q >> 1) + 2**30) >> 31
                  for p, q in zip(x.tolist(), y.tolist(), strict=True)]),
        _s32(xo * 128),
        np.array([(p % 2**32) >> 5 for p in x.tolist()]),
        np.array([(p >> 9) + ((p >> 8) & 1) for p in x.tolist()]),  # round: half up
        np.array([32 - (p % 2**32).bit_length() for p in x.tolist()]),
    ]
    for g_, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g_, np.asarray(w, dtype=np.int64), strict=True)


@pytest.mark.parametrize("c", [1, 2, 7, 16, 31, 32, 33, 40, 47, 62, 63])
def test_64_bit_product_and_every_rounding_match_refq(c: int) -> None:
    x, y = _edges(np.random.default_rng(c))
    if c < 32:  # keep the rounded quotient within int32
        x = x >> (32 - c)
    g = Graph()
    a = g.input("a", (N,), "int32", int(x.min()), int(x.max()))
    b = g.input("b", (N,), "int32", *I32)
    p = wide.mul64(g, a, b)
    for r in wide.ROUNDINGS:
        g.output(wide.round_shift(g, p, c, r))
    g.output(p.hi)
    g.output(p.lo)
    got = _run(g, x, y)
    prod = [int(u) * int(v) for u, v in zip(x.tolist(), y.tolist(), strict=True)]
    want_hi = np.array([q >> 32 for q in prod])
    np.testing.assert_array_equal(got[-2], want_hi, strict=True)
    np.testing.assert_array_equal(got[-1], _s32(np.array(prod, dtype=object)), strict=True)
    for r, g_ in zip(wide.ROUNDINGS, got, strict=False):
        # the independent oracle: refq.intmath's rounding of the exact product
        want = np.array([int(round_shift(np.array([q], dtype=object).astype(np.int64), c, r)[0])
                         if abs(q) < 2**63 else 0 for q in prod])
        assert want.dtype == np.int64
        np.testing.assert_array_equal(g_, want, strict=True, err_msg=r)


def test_64_bit_add_compare_and_saturate() -> None:
    rng = np.random.default_rng(3)
    x, y = _edges(rng)
    g = Graph()
    a = g.input("a", (N,), "int32", *I32)
    b = g.input("b", (N,), "int32", *I32)
    pa, pb = wide.mul64(g, a, g.scalar(3 << 28, 1)), wide.mul64(g, b, g.scalar(12345, 1))
    s = wide.add(g, pa, pb)
    d = wide.sub(g, pa, pb)
    g.output(s.hi)
    g.output(s.lo)
    g.output(d.hi)
    g.output(d.lo)
    g.output(g.b2i(wide.ge(g, pa, pb)))
    g.output(wide.saturate_i32(g, s, -1000, 10**9))
    got = _run(g, x, y)
    va = [int(u) * (3 << 28) for u in x.tolist()]
    vb = [int(u) * 12345 for u in y.tolist()]
    sums = [p + q for p, q in zip(va, vb, strict=True)]
    diffs = [p - q for p, q in zip(va, vb, strict=True)]
    for (hi, lo), vals in (((got[0], got[1]), sums), ((got[2], got[3]), diffs)):
        back = [(int(h) << 32) + (int(lw) & 0xFFFFFFFF) for h, lw in zip(hi, lo, strict=True)]
        assert back == vals
    np.testing.assert_array_equal(got[4], np.array([int(p >= q)
                                                    for p, q in zip(va, vb, strict=True)]),
                                  strict=True)
    np.testing.assert_array_equal(got[5], np.clip(np.array(sums, dtype=object), -1000, 10**9)
                                  .astype(np.int64), strict=True)


@pytest.mark.parametrize(("mult", "shift"), [
    ((3,), (1,)), ((12,), (4,)), ((5 << 20,), (22,)), (((1 << 30) + 7,), (31,)),
    ((3, 40, 1 << 29, 77), (9, 9, 9, 9)),  # one shift: MUL with shift
    ((3, 40, 1 << 29, 77), (20, 24, 40, 33)),  # per-channel shifts: RESCALE SINGLE_ROUND
])
def test_nearest_roundings_are_tosa_half_up_plus_the_tie_correction(
        mult: tuple[int, ...], shift: tuple[int, ...]) -> None:
    """requant.nearest: TOSA's half-up rounding (MUL with shift, RESCALE) plus the exact tie
    correction equals refq's half_up/half_even/half_away, on inputs dense in ties."""
    rng = np.random.default_rng(sum(mult))
    ch, rows = len(mult), N // len(mult)
    bound = min(min(2**31 - 1, (2**30 << c) // b) for b, c in zip(mult, shift, strict=True))
    if len(set(shift)) > 1 and min(shift) <= 32:
        bound = min(bound, 1 << (min(shift) - 1))  # RESCALE's input-range precondition
    x = rng.integers(-bound, bound, (rows, ch))
    for j, (b, c) in enumerate(zip(mult, shift, strict=True)):
        k = c - ((b & -b).bit_length() - 1)  # ties: x = 2^(k-1) (mod 2^k)
        if k >= 1:
            top = max(1, bound >> k)
            x[: rows // 2, j] = (rng.integers(-top, top, rows // 2) << k) + (1 << (k - 1))
    x = np.clip(x, -bound, bound - 1)
    g = Graph()
    xv = g.input("x", x.shape, "int32", -bound, bound - 1)
    rounds = ("half_up", "half_even", "half_away")
    for r in rounds:
        out = nearest(g, xv, mult, shift, r, [(-bound, bound - 1)] * ch)
        assert out is not None, (mult, shift, r)
        g.output(out)
    got = _run(g, x)
    prod = x.astype(np.int64) * np.array(mult, dtype=np.int64)
    for r, g_ in zip(rounds, got, strict=True):
        want = round_shift(prod, np.array(shift, dtype=np.int64), r)
        np.testing.assert_array_equal(g_, want, strict=True, err_msg=f"{r} {mult} {shift}")


def test_interval_proofs_refuse_what_tosa_would_leave_unpredictable() -> None:
    g = Graph()
    a = g.input("a", (4,), "int32", *I32)
    small = g.input("s", (4,), "int32", -1000, 1000)
    with pytest.raises(ExportError, match="ADD"):
        g.add(a, a)  # may overflow int32: TOSA REQUIREs it does not
    with pytest.raises(ExportError, match="MUL"):
        g.mul(a, a, 3)  # the shifted product may leave int32
    with pytest.raises(ExportError, match="INTDIV"):
        g.intdiv(small, small)  # the divisor interval holds 0
    with pytest.raises(ExportError, match="RESCALE"):
        g.rescale(a, [1 << 30], [31], "int8")  # |x| < 2^30 cannot be proven
    with pytest.raises(ExportError, match="shift"):
        g.ars(a, 32)
    assert g.add(small, small).hi == 2000
    # a refq-checked bound is accepted and recorded
    v = g.add(a, small, within=(-(2**31), 2**31 - 1, "checked by refq"))
    assert (v.lo, v.hi) == I32 and g.assumptions == ["checked by refq"]
