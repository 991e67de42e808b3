"""Fast paths of the interpreter's kernels equal their general paths and Python-int oracles.

Covered: the bucket-table ``threshold`` (vs ``np.searchsorted``), the one-bound-check
``dyadic_requantize`` (vs its element-wise general path and a Fraction oracle), in-place
``requantize`` / ``add`` (inputs never modified) and ``linear`` / ``matmul`` with narrowed
operands (vs object-array matmul).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refq.program.movement as mv
from refq.errors import RangeError
from refq.intmath import IntFormat, dyadic_requantize
from refq.intmath.rounding import ROUNDINGS
from refq.ops.add import AddParams, add
from refq.ops.linear import GemmParams, linear, matmul
from refq.ops.requantize import RequantParams, requantize
from refq.program import Op, Program, run
from refq.program.plan import plan_for
from refq.program.steps import ChainStep

I64 = st.integers(-(2**63), 2**63 - 1)


def round_fraction(q: Fraction, rounding: str) -> int:
    """Independent oracle of the six named roundings."""
    fl = q.numerator // q.denominator
    r = q - fl
    if rounding == "floor" or r == 0:
        return fl
    if rounding == "ceil":
        return fl + 1
    if rounding == "trunc":
        return fl + (1 if q < 0 else 0)
    if r != Fraction(1, 2):
        return fl + (1 if r > Fraction(1, 2) else 0)
    if rounding == "half_up":
        return fl + 1
    if rounding == "half_away":
        return fl + (0 if q < 0 else 1)
    return fl + (fl % 2)  # half_even


# --- threshold ---------------------------------------------------------------------------


@st.composite
def threshold_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(16, 80))
    kind = draw(st.sampled_from(["uniform", "log", "dups", "random"]))
    base = draw(st.integers(-(2**40), 2**40))
    if kind == "uniform":
        step = draw(st.integers(1, 2**20))
        t = base + step * np.arange(n, dtype=np.int64)
    elif kind == "log":
        t = base + (np.int64(1) << np.arange(n, dtype=np.int64) % 50)
        t = np.sort(t)
    elif kind == "dups":
        t = np.sort(np.repeat(base + np.arange(n // 4 + 1, dtype=np.int64) * 7, 4)[:n])
    else:
        t = np.sort(draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**45), 2**45))))
    span = int(t[-1]) - int(t[0])
    lo, hi = int(t[0]) - 3 * span - 5, int(t[-1]) + 3 * span + 5
    size = 2 * draw(st.integers(2048, 3000))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).integers(lo, hi, size, dtype=np.int64)
    x[: t.size] = t  # every threshold itself (ties: t <= x counts)
    x[t.size : 2 * t.size] = t - 1
    x[-1], x[-2] = -(2**63), 2**63 - 1
    return x.reshape(2, -1), t


@settings(max_examples=40, deadline=None)
@given(case=threshold_cases())
@example(case=(np.arange(-5000, 5000, dtype=np.int64).reshape(2, -1), np.arange(16) * 3))
def test_threshold_bucket_path_equals_searchsorted(case: tuple[np.ndarray, np.ndarray]) -> None:
    x, t = case
    want = np.searchsorted(t, x, side="right").astype(np.int64)
    (got,) = mv.threshold(x, t)
    np.testing.assert_array_equal(got, want, strict=True)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(16, 80),
    base=st.integers(-(2**40), 2**40),
    width=st.integers(1, 5000),
    seed=st.integers(0, 2**32 - 1),
    dups=st.booleans(),
)
@example(n=16, base=0, width=1, seed=0, dups=False)  # one distinct value
@example(n=64, base=-(2**40), width=5000, seed=1, dups=True)
def test_threshold_dense_path_equals_searchsorted(
    n: int, base: int, width: int, seed: int, dups: bool
) -> None:
    """Inputs on a narrow range (softmax codes, activations): the decision-table path."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(base - width, base + 2 * width, n, dtype=np.int64))
    if dups:
        t = np.sort(np.repeat(t[: n // 4 + 1], 4)[:n])
    x = rng.integers(base, base + width, 8192, dtype=np.int64)
    x[: t.size] = np.clip(t, base, base + width - 1)  # ties at the thresholds
    assert mv._dense_count(x, t) is not None
    (got,) = mv.threshold(x, t)
    np.testing.assert_array_equal(got, np.searchsorted(t, x, side="right"), strict=False)
    assert got.dtype == np.int64


def test_threshold_bucket_path_is_taken_and_falls_back() -> None:
    t = np.arange(64, dtype=np.int64) * 100
    x = np.arange(-200, 6600, dtype=np.int64)
    got = mv._bucket_count(x, t)
    assert got is not None
    np.testing.assert_array_equal(got, np.searchsorted(t, x, side="right"), strict=False)
    dense = np.concatenate([np.zeros(40, np.int64), np.arange(1, 25, dtype=np.int64) * 10**6])
    got = mv._bucket_count(np.arange(-50, 30_000_000, 3000, dtype=np.int64), dense)
    assert got is not None  # 40 equal thresholds: the step passes give up, searchsorted ends
    xs = np.arange(-50, 30_000_000, 3000, dtype=np.int64)
    np.testing.assert_array_equal(got, np.searchsorted(dense, xs, side="right"), strict=False)


# --- dyadic requantization -----------------------------------------------------------------


@st.composite
def dyadic_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = draw(st.integers(1, 6))
    per_channel = draw(st.booleans())
    nb = c if per_channel else 1
    b = draw(hnp.arrays(np.int64, nb, elements=st.integers(0, 2**31 - 1)))
    s = draw(hnp.arrays(np.int64, nb, elements=st.integers(0, 63)))
    xmax = draw(st.sampled_from([2**8, 2**20, 2**31, 2**40, 2**63 - 1]))
    x = draw(hnp.arrays(np.int64, (draw(st.integers(1, 5)), c), elements=st.integers(-xmax, xmax)))
    return x, b, s


@settings(max_examples=150, deadline=None)
@given(case=dyadic_cases(), rounding=st.sampled_from(ROUNDINGS))
@example(
    case=(np.array([[2**31 - 1, -(2**31)]]), np.array([2**31 - 1, 2**30]), np.array([30, 0])),
    rounding="half_even",
)
@example(case=(np.array([[5, -5, 3]]), np.array([1]), np.array([1])), rounding="half_even")
@example(
    case=(np.array([[5, -5, 3]]), np.array([3, 1, 1]), np.array([2, 1, 63])), rounding="half_away"
)
def test_dyadic_fast_equals_general_and_oracle(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], rounding: str
) -> None:
    x, b, s = case
    want = []
    overflow = False
    for row in x:
        out = []
        for v, bb, ss in zip(
            row, np.broadcast_to(b, row.shape), np.broadcast_to(s, row.shape), strict=True
        ):
            p = int(v) * int(bb)
            if not -(2**63) <= p < 2**63:
                overflow = True
            out.append(round_fraction(Fraction(p, 2 ** int(ss)), rounding))
        want.append(out)
    if overflow:
        with pytest.raises(RangeError, match="overflows int64"):
            dyadic_requantize(x, b, s, rounding)  # type: ignore[arg-type]
        return
    got = dyadic_requantize(x, b, s, rounding)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64), strict=True)


def test_requantize_and_add_leave_inputs_unchanged() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(-(2**20), 2**20, (2, 5, 8))
    keep = x.copy()
    p = RequantParams(
        family="dyadic",
        multiplier=tuple(int(v) for v in rng.integers(2**20, 2**30, 8)),
        shift=tuple(int(v) for v in rng.integers(20, 40, 8)),
        out_zero_point=-3,
        out_format=IntFormat(8, True),
    )
    y = requantize(x, p)
    np.testing.assert_array_equal(x, keep, strict=True)
    assert not np.may_share_memory(y, x)
    p0 = RequantParams(family="dyadic", multiplier=(1,), shift=(0,), out_format=IntFormat(32, True))
    y0 = requantize(x, p0)  # identity: must still be a new array
    np.testing.assert_array_equal(y0, x, strict=True)
    y0[...] = 0
    np.testing.assert_array_equal(x, keep, strict=True)
    a = rng.integers(-(2**19), 2**19, (2, 5, 8))
    ka = a.copy()
    ap = AddParams(
        a_format=IntFormat(20, True),
        b_format=IntFormat(32, True),
        a_multiplier=1,
        b_multiplier=1,
        out_format=IntFormat(32, True),
    )
    z = add(a, x, ap)
    np.testing.assert_array_equal(z, a + x, strict=True)
    np.testing.assert_array_equal(a, ka, strict=True)
    np.testing.assert_array_equal(x, keep, strict=True)


# --- linear / matmul with narrowed operands ------------------------------------------------

FMTS = [IntFormat(8, True), IntFormat(8, False), IntFormat(4, True), IntFormat(16, True)]


@settings(max_examples=60, deadline=None)
@given(
    fa=st.sampled_from(FMTS),
    fb=st.sampled_from(FMTS),
    data=st.data(),
)
def test_linear_and_matmul_narrow_operands(
    fa: IntFormat, fb: IntFormat, data: st.DataObject
) -> None:
    za = data.draw(st.integers(fa.min, fa.max))
    zb = data.draw(st.integers(fb.min, fb.max))
    m, k, n = (
        data.draw(st.integers(1, 5)),
        data.draw(st.integers(1, 40)),
        data.draw(st.integers(1, 5)),
    )
    x = data.draw(hnp.arrays(np.int64, (2, m, k), elements=st.integers(fa.min, fa.max)))
    w = data.draw(hnp.arrays(np.int64, (n, k), elements=st.integers(fb.min, fb.max)))
    p = GemmParams(a_format=fa, b_format=fb, a_zero_point=za, b_zero_point=zb, acc_bits=64)
    want = np.matmul((x - za).astype(object), (w - zb).T.astype(object))
    got = linear(x, w, None, p)
    assert got.dtype == np.int64
    assert (got.astype(object) == want).all()
    got = matmul(x, np.swapaxes(np.broadcast_to(w, (2, n, k)), -1, -2), p)
    assert (got.astype(object) == want).all()


def test_linear_accumulator_check_still_fires_without_a_proof() -> None:
    """acc_bits too small for the proven bound: the element-wise check runs and names it."""
    x = np.full((1, 64), -128, dtype=np.int64)
    w = np.full((2, 64), -128, dtype=np.int64)
    p = GemmParams(acc_bits=20)  # 64·128·128 = 2^20 > 2^19 - 1
    with pytest.raises(RangeError, match="accumulator"):
        linear(x, w, None, p)
    small = np.ones((1, 64), dtype=np.int64)
    np.testing.assert_array_equal(linear(small, w, None, p), np.full((1, 2), -8192), strict=True)


# --- run(): range checks proven by construction ---------------------------------------------


def _requant_program(out_fmt: IntFormat, declared: IntFormat) -> Program:
    p = Program("rq")
    p.declare("x", (-1, 4), IntFormat(32, True), "input")
    p.declare("y", (-1, 4), declared)
    p.declare("c", (-1, 4), IntFormat(8, False))
    p.declare("z", (-1, 4), IntFormat(8, True))
    p.const("t", np.arange(16, dtype=np.int64) * 8 - 60, IntFormat(16, True))
    p.const("table", np.arange(17, dtype=np.int64) - 8, IntFormat(8, True))
    rq = RequantParams(family="dyadic", multiplier=(3,), shift=(1,), out_format=out_fmt)
    p.add(Op("kernel", "requantize.dyadic", ("x",), ("y",), rq.to_dict(), "rq"))
    p.add(Op("move", "threshold", ("y", "t"), ("c",), {}, "thr"))
    p.add(Op("move", "lookup", ("c", "table"), ("z",), {"offset": 0}, "lut"))
    p.outputs = ["y", "z"]
    p.validate()
    return p


def test_run_skips_only_proven_range_checks() -> None:
    x = np.array([[-(2**20), -3, 5, 2**20]])
    out = run(_requant_program(IntFormat(16, True), IntFormat(16, True)), {"x": x})
    np.testing.assert_array_equal(out["y"], np.array([[-32768, -4, 8, 32767]]), strict=True)
    want_codes = np.searchsorted(np.arange(16) * 8 - 60, out["y"], side="right")
    np.testing.assert_array_equal(out["c"], want_codes.astype(np.int64), strict=True)
    np.testing.assert_array_equal(out["z"], want_codes - 8, strict=True)
    # out_format wider than the declared tensor: not proven, so the check runs and names it
    prog = _requant_program(IntFormat(16, True), IntFormat(12, True))
    with pytest.raises(RangeError, match="tensor 'y' value -32768"):
        run(prog, {"x": x})
    small = np.array([[-3, 5, 7, 100]])
    np.testing.assert_array_equal(
        run(prog, {"x": small})["y"], np.array([[-4, 8, 10, 150]]), strict=True
    )


# --- narrow (int8/int16/int32) weight operands and run()'s cached weight copies -------------


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([(4, True), (4, False), (8, True), (8, False), (12, True), (16, True)]),
    st.sampled_from([np.int8, np.int16, np.int32]),
    st.data(),
)
def test_linear_narrow_weight_equals_int64_weight(
    fmt_t: tuple[int, bool], dt: type[np.signedinteger], data: st.DataObject
) -> None:
    fmt = IntFormat(*fmt_t)
    info = np.iinfo(dt)
    lo, hi = max(fmt.min, int(info.min)), min(fmt.max, int(info.max))
    n, k = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 9))
    w = data.draw(hnp.arrays(np.int64, (n, k), elements=st.integers(lo, hi)))
    x = data.draw(hnp.arrays(np.int64, (3, k), elements=st.integers(-128, 127)))
    zp = data.draw(st.integers(lo, hi))
    p = GemmParams(b_format=fmt, b_zero_point=zp, acc_bits=48)
    want = (x.astype(object) @ (w.astype(object) - zp).T).astype(np.int64)
    np.testing.assert_array_equal(linear(x, w.astype(dt), None, p), want, strict=True)
    np.testing.assert_array_equal(linear(x, w, None, p), want, strict=True)


def test_linear_narrow_weight_still_range_checked() -> None:
    x = np.ones((1, 3), dtype=np.int64)
    w = np.array([[1, 8, -2]], dtype=np.int8)  # 8 is outside int4; the int8 dtype proves nothing
    with pytest.raises(RangeError, match="w"):
        linear(x, w, None, GemmParams(b_format=IntFormat(4, True)))
    with pytest.raises(RangeError, match="w"):
        linear(x, w.astype(np.int64), None, GemmParams(b_format=IntFormat(4, True)))


def _linear_program(w: np.ndarray, w_fmt: IntFormat, b_fmt: IntFormat | None = None) -> Program:
    p = Program("lin")
    p.declare("x", (-1, w.shape[1]), IntFormat(8, True), "input")
    p.declare("y", (-1, w.shape[0]), IntFormat(32, True))
    p.const("w", w, w_fmt)
    p.const("b", np.arange(w.shape[0], dtype=np.int64) - 2, IntFormat(32, True))
    gp = GemmParams(b_format=b_fmt or w_fmt)
    p.add(Op("kernel", "linear.gemm", ("x", "w", "b"), ("y",), gp.to_dict(), "fc"))
    p.outputs = ["y"]
    p.validate()
    return p


def test_run_weight_cache_same_results_and_invalidated_on_replace() -> None:
    rng = np.random.default_rng(5)
    w = rng.integers(-300, 300, size=(5, 7))
    x = rng.integers(-128, 128, size=(4, 7))
    prog = _linear_program(w, IntFormat(16, True))
    want = (x.astype(object) @ w.astype(object).T + (np.arange(5) - 2)).astype(np.int64)
    for _ in range(2):  # first run fills the cache, second reuses it
        np.testing.assert_array_equal(run(prog, {"x": x})["y"], want, strict=True)
    (step,) = plan_for(prog, "all").steps  # the GEMM as a block source, W' in int16
    assert isinstance(step, ChainStep) and step.source.wt.dtype == np.int16
    assert not prog.consts["w"].flags.writeable  # cached source cannot change under the copy
    assert "w" not in run(prog, {"x": x})  # consts still excluded from the results
    # replacing the const array drops the stale copy
    prog.consts["w"] = -w
    np.testing.assert_array_equal(
        run(prog, {"x": x})["y"], -want + 2 * (np.arange(5) - 2), strict=True
    )
    # a const outside the kernel's b_format still raises from the op, as with int64 weights
    bad = _linear_program(np.full((2, 7), 200), IntFormat(16, True), IntFormat(8, True))
    with pytest.raises(RangeError, match="fc"):
        run(bad, {"x": x})


def test_run_params_cache_follows_edits_and_linear_check_only_when_proven() -> None:
    w = np.array([[1, 2, 3], [-4, 5, -6]])
    prog = _linear_program(w, IntFormat(8, True))
    x = np.array([[100, -100, 50]])
    want = (x.astype(object) @ w.T.astype(object) + np.array([-2, -1])).astype(np.int64)
    np.testing.assert_array_equal(run(prog, {"x": x})["y"], want, strict=True)
    # editing the op's params in place: the cached parse must not be reused
    prog.ops[0].params["b_zero_point"] = 1
    want1 = (x.astype(object) @ (w - 1).T.astype(object) + np.array([-2, -1])).astype(np.int64)
    np.testing.assert_array_equal(run(prog, {"x": x})["y"], want1, strict=True)
    # acc_bits wider than the declared output: run's own element-wise check still runs
    prog.ops[0].params["b_zero_point"] = 0
    prog.ops[0].params["acc_bits"] = 40
    prog.tensors["y"] = prog.tensors["y"].__class__("y", (-1, 2), IntFormat(10, True), "value")
    with pytest.raises(RangeError, match="tensor 'y'"):
        run(prog, {"x": x})
    np.testing.assert_array_equal(
        run(prog, {"x": np.array([[1, 1, 1]])})["y"], np.array([[4, -6]]), strict=True
    )


# --- run(keep="outputs"): threshold + lookup as one gather ------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    base=st.integers(-(2**40), 2**40),
    width=st.integers(1, 4096),  # a range of at most x.size values: the table path
    offset=st.integers(-3, 3),
    seed=st.integers(0, 2**32 - 1),
)
@example(n=1, base=0, width=1, offset=0, seed=0)
@example(n=16, base=-5, width=100, offset=2, seed=3)  # codes below the offset: no fusion
def test_threshold_lookup_equals_the_two_ops(
    n: int, base: int, width: int, offset: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(base - width, base + 2 * width, n, dtype=np.int64))
    table = rng.integers(-(2**40), 2**40, n + 1 + max(offset, 0), dtype=np.int64)
    x = rng.integers(base, base + width, 4096, dtype=np.int64)
    x[: t.size] = np.clip(t, base, base + width - 1)
    got = mv.threshold_lookup(x, t, table, offset=offset)
    codes = np.searchsorted(t, x, side="right") - offset  # independent of movement.py
    if codes.min() < 0 or codes.max() >= table.size:
        assert got is None  # the two ops would raise (or might): never fused
        return
    assert got is not None
    np.testing.assert_array_equal(got, table[codes], strict=True)
    wide = x.copy()
    wide[-1] = base + 5000  # a range wider than the tensor: the bucket-count path
    got_wide = mv.threshold_lookup(wide, t, table, offset=offset)
    if offset > 0 or t.size - offset >= table.size:  # some code 0..n outside the table
        assert got_wide is None
    else:
        want = table[np.searchsorted(t, wide, side="right") - offset]
        np.testing.assert_array_equal(got_wide, want, strict=True)


def _threshold_program(table_size: int) -> Program:
    p = Program("thr")
    p.declare("x", (-1, 4), IntFormat(16, True), "input")
    p.declare("c", (-1, 4), IntFormat(8, False))
    p.declare("z", (-1, 4), IntFormat(16, True))
    p.const("t", np.arange(16, dtype=np.int64) * 8 - 60, IntFormat(16, True))
    p.const("table", (np.arange(table_size, dtype=np.int64) * 37) % 101 - 50, IntFormat(8, True))
    p.add(Op("move", "threshold", ("x", "t"), ("c",), {}, "thr"))
    p.add(Op("move", "lookup", ("c", "table"), ("z",), {"offset": 0}, "lut"))
    p.outputs = ["z"]
    p.validate()
    return p


def test_run_outputs_fuses_threshold_lookup_same_values_and_errors() -> None:
    x = np.random.default_rng(0).integers(-100, 100, (2048, 4), dtype=np.int64)
    prog = _threshold_program(17)
    every = run(prog, {"x": x})
    outs = run(prog, {"x": x}, keep="outputs")
    # keep="all" returns the codes: never fused; keep="outputs": one step for both ops
    assert [s.ops for s in plan_for(prog, "all").steps] == [(0,), (1,)]
    (fused,) = plan_for(prog, "outputs").steps
    assert isinstance(fused, ChainStep) and fused.ops == (0, 1) and fused.declined == 0
    want = prog.consts["table"][np.searchsorted(np.arange(16) * 8 - 60, x, side="right")]
    np.testing.assert_array_equal(outs["z"], want, strict=True)
    np.testing.assert_array_equal(every["z"], want, strict=True)
    # a table too short for the codes: not fused, and both modes raise the lookup's error
    short = _threshold_program(12)
    for keep in ("all", "outputs"):
        with pytest.raises(RangeError, match="lookup"):
            run(short, {"x": x}, keep=keep)
    # its fused steps gave up on the lookup's RangeError and the plain ops raised it
    assert plan_for(short, "outputs").declined() == 1


def _move_program(in_fmt: IntFormat, out_fmt: IntFormat) -> Program:
    p = Program("mv")
    p.declare("x", (-1, 4), in_fmt, "input")
    p.declare("xt", (4, -1), out_fmt)
    p.declare("a", (2, -1), out_fmt)
    p.declare("b", (2, -1), out_fmt)
    p.add(Op("move", "transpose", ("x",), ("xt",), {"perm": [1, 0]}, "t"))
    p.add(Op("move", "split", ("xt",), ("a", "b"), {"axis": 0, "sections": 2}, "s"))
    p.outputs = ["a", "b"]
    p.validate()
    return p


def test_run_movement_range_checks_skipped_only_when_the_input_format_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    checked: list[str] = []
    for mod_name in ("refq.program.run", "refq.program.steps"):
        mod = sys.modules[mod_name]
        for fn in ("check_range", "check_bounds"):
            if hasattr(mod, fn):
                real = getattr(mod, fn)

                def spy(arr: np.ndarray, fmt: IntFormat, name: str, where: str,
                        real: Any = real) -> np.ndarray:
                    checked.append(name)
                    return real(arr, fmt, name, where)  # type: ignore[no-any-return]

                monkeypatch.setattr(mod, fn, spy)
    x = np.array([[-100, 5, 7, 100], [1, 2, 3, -128]])
    out = run(_move_program(IntFormat(8, True), IntFormat(16, True)), {"x": x})
    np.testing.assert_array_equal(out["a"], x.T[:2], strict=True)
    assert checked == ["x"]  # only the program input: transpose and split outputs proven
    checked.clear()
    narrow = _move_program(IntFormat(16, True), IntFormat(8, True))
    assert run(narrow, {"x": x})["b"].tolist() == x.T[2:].tolist()
    assert checked == ["x", "xt"]  # int16 → int8: checked; split of the checked int8 xt: proven
    with pytest.raises(RangeError, match="tensor 'xt' value 300"):
        run(narrow, {"x": np.array([[300, 0, 0, 0]])})


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 300),
    base=st.integers(-(2**40), 2**40),
    step=st.integers(1, 2**24),
    jitter=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
@example(n=255, base=-145687807, step=1133757, jitter=1, seed=0)  # a LayerNorm quantizer's
def test_threshold_single_pass_equals_searchsorted(
    n: int, base: int, step: int, jitter: int, seed: int
) -> None:
    """Evenly spaced (± jitter) thresholds: the one-pass bucket count, at every threshold,
    one below it, and at the int64 extremes."""
    rng = np.random.default_rng(seed)
    t = base + step * np.arange(n, dtype=np.int64)
    if step > 2 * jitter:
        t = t + rng.integers(-jitter, jitter + 1, n)
    t = np.sort(t)
    x = rng.integers(int(t[0]) - 2 * step, int(t[-1]) + 2 * step, 3 * n + 100, dtype=np.int64)
    x[:n], x[n : 2 * n] = t, t - 1
    x[-1], x[-2] = -(2**63), 2**63 - 1
    got = mv._single_pass_count(x, t, int(t[-1]) - int(t[0]))
    if int(np.diff(t).min()) < 1:
        assert got is None  # equal thresholds: a bucket may hold two
        return
    assert got is not None
    np.testing.assert_array_equal(got, np.searchsorted(t, x, side="right"), strict=False)


def test_run_kernel_still_checks_inputs_declared_wider_than_its_format() -> None:
    """run() notes each tensor within its DECLARED format; a kernel whose own input format
    is narrower still scans it: x declared int16 holding 200 fails linear's int8 a_format."""
    p = Program("lin16")
    p.declare("x", (-1, 4), IntFormat(16, True), "input")
    p.declare("y", (-1, 2), IntFormat(32, True))
    p.const("w", np.ones((2, 4), dtype=np.int64), IntFormat(8, True))
    p.const("b", np.zeros(2, dtype=np.int64), IntFormat(32, True))
    p.add(Op("kernel", "linear.gemm", ("x", "w", "b"), ("y",), GemmParams().to_dict(), "fc"))
    p.outputs = ["y"]
    p.validate()
    ok = run(p, {"x": np.array([[1, 2, 3, -128]])})["y"]
    np.testing.assert_array_equal(ok, np.array([[-122, -122]]), strict=True)
    for keep in ("all", "outputs"):
        with pytest.raises(RangeError, match="tensor 'x' value 200"):
            run(p, {"x": np.array([[1, 2, 200, 4]])}, keep=keep)
