"""Published test vectors, overflow detection and bad-input errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from refq import ops, params
from refq.errors import RangeError, RefqError, SpecError
from refq.intmath import IntFormat

# CMSIS-NN arm_softmax_s8 unit-test vectors as published in the Zephyr CMSIS-NN test,
# zephyrproject-rtos/zephyr tests/lib/cmsis_nn/src/main.c (test_softmax). Data only.
# (a) later revision (SOFTMAX_INPUT_MULT 1077952640, LEFT_SHIFT 19, DIFF_MIN -3968; 2 rows x 5)
CMSIS_A_IN = [101, 49, 6, -34, -75, -79, -38, 120, -55, 115]
CMSIS_A_OUT = [-57, -70, -79, -86, -92, -94, -88, -54, -91, -56]
# (a') the same 10 inputs twice as one row of 20 (softmax_20 test data of the same suite)
CMSIS_A20_OUT = [-111, -114, -116, -118, -119, -119, -118, -109, -119, -110] * 2
# (b) commit e852c0dd60d870b4a22caf4e7a8cff0637d29ca2 (MULT 1077952576, SHIFT 23, DIFF_MIN -248)
CMSIS_B_IN = [-80, -48, 16, 0, -96]
CMSIS_B_OUT = [-128, -125, 56, -60, -128]


def test_cmsis_nn_softmax_vectors():
    p = ops.TfliteSoftmaxParams(1077952640, 19, -3968)
    out = ops.softmax(np.array(CMSIS_A_IN).reshape(2, 5), p, "tflite")
    np.testing.assert_array_equal(out.ravel(), np.array(CMSIS_A_OUT, dtype=np.int64), strict=True)
    out20 = ops.softmax(np.array(CMSIS_A_IN * 2), p, "tflite")
    np.testing.assert_array_equal(out20, np.array(CMSIS_A20_OUT, dtype=np.int64), strict=True)
    pb = ops.TfliteSoftmaxParams(1077952576, 23, -248)
    outb = ops.softmax(np.array(CMSIS_B_IN), pb, "tflite")
    np.testing.assert_array_equal(outb, np.array(CMSIS_B_OUT, dtype=np.int64), strict=True)


def test_tflite_params_reproduce_cmsis_constants():
    p = params.tflite_softmax_params(1 / 256 * 256 / 255 * 1.0)
    assert (p.input_left_shift, p.diff_min) == (19, -3968)


def test_ibert_iexp_n30_overflows_int32():
    p = params.ibert_softmax_params(0.05)
    x = np.array([[0, -1, -40]])
    ops.softmax(x, p, "ibert")  # fine with the 64-bit declaration
    p32 = dataclasses.replace(p, acc_bits=32)
    with pytest.raises(RangeError, match="softmax_ibert"):
        ops.softmax(x, p32, "ibert")
    with pytest.raises(RangeError):
        ops.softmax(x, dataclasses.replace(params.lis_params(0.05), acc_bits=32), "lis")


def test_linear_accumulator_overflow_raises():
    x = np.full((1, 4096), 127)
    w = np.full((1, 4096), 127)
    p = ops.GemmParams(acc_bits=16)
    with pytest.raises(RangeError, match="linear"):
        ops.linear(x, w, None, p)
    assert int(ops.linear(x, w, None, ops.GemmParams())[0, 0]) == 127 * 127 * 4096


def test_linear_accumulator_plus_bias_overflow_raises():
    """acc fits int32 by the format proof, acc + bias does not: the sum is still checked
    (the proof uses the bias's own extreme values), and an in-range sum passes exactly."""
    x = np.full((2, 4096), 127)
    x[1] = -128
    w = np.full((1, 4096), 127)
    acc = 127 * 127 * 4096
    with pytest.raises(RangeError, match=r"accumulator \+ bias.*index \(0, 0\)"):
        ops.linear(x, w, np.array([2**31 - 1 - acc + 1]), ops.GemmParams())
    ok = ops.linear(x, w, np.array([2**31 - 1 - acc]), ops.GemmParams())
    np.testing.assert_array_equal(
        ok, np.array([[2**31 - 1], [-128 * 127 * 4096 + 2**31 - 1 - acc]]), strict=True)


@pytest.mark.parametrize(
    "call",
    [
        lambda: ops.softmax(np.array([0.5, 1.0]), params.refq_softmax_params(0.1), "refq"),
        lambda: ops.softmax(np.array([1, 2]), params.refq_softmax_params(0.1), "tflite"),
        lambda: ops.softmax(np.array([1, 2]), params.refq_softmax_params(0.1), "nope"),
        lambda: ops.gelu(np.array([300]), params.gelu_lut_params(0.1, 0, 0.1, 0), "lut"),
        lambda: ops.layernorm(np.array([[1.0, 2.0]]), ops.LayerNormParams()),
        lambda: ops.linear(np.array([[1, 2]]), np.array([[1, 2, 3]])),
        lambda: ops.matmul(np.array([[200]]), np.array([[1]])),
        lambda: params.ibert_softmax_params(float("nan")),
        lambda: params.shiftmax_params(0.0),
        lambda: params.tflite_softmax_params(1e-12),
        lambda: ops.RequantParams("double", (12345,), (0,)),
        lambda: ops.IBertSoftmaxParams(0, 1, 1),
        lambda: ops.ShiftmaxParams(0),
        lambda: ops.requantize(np.array([2**40]), ops.RequantParams()),
    ],
)
def test_bad_input_raises_refq_error(call):
    with pytest.raises(RefqError):
        call()


def test_errors_are_specific():
    with pytest.raises(SpecError):
        ops.softmax(np.array([0.5]), params.refq_softmax_params(0.1), "refq")
    with pytest.raises(RangeError):
        ops.softmax(np.array([40000]), params.refq_softmax_params(0.1), "refq")


def test_params_roundtrip():
    for p in (params.refq_softmax_params(0.1), params.ibert_softmax_params(0.1),
              params.tflite_softmax_params(0.05), params.gelu_lut_params(0.1, 0, 0.05, -3),
              ops.GemmParams(requant=params.requant_params(0.01)),
              params.layernorm_params(channel_shift=(0, 1, 2)), ops.AddParams()):
        d = p.to_dict()
        assert type(p).from_dict(d) == p


def test_ivit_sqrt_non_convergence_pinned():
    from refq.ops.layernorm import ivit_sqrt

    assert int(ivit_sqrt(np.array([99]))[0]) == 64
    assert int(ivit_sqrt(np.array([10**10]))[0]) == 100000


def test_int4_format_enforced():
    p = ops.GemmParams(IntFormat(4, True), IntFormat(4, True))
    with pytest.raises(RangeError):
        ops.linear(np.array([[8]]), np.array([[1]]), None, p)


def test_add_int32_check_after_zero_point_and_exact_int64_saturation():
    """a - a_zero_point leaving int32 is still caught (the format proof does not cover it);
    two branches of about 2^62 plus an output zero point of 2^62 saturate to the int64 max
    instead of wrapping (the sum is formed exactly when its bound passes 2^63)."""
    i32, i64 = IntFormat(32, True), IntFormat(64, True)
    p = ops.AddParams(a_format=i32, b_format=i32, a_zero_point=-5, out_format=i32)
    with pytest.raises(RangeError, match="a - a_zero_point"):
        ops.add(np.array([2**31 - 1]), np.array([0]), p)
    big = ops.AddParams(a_format=i32, b_format=i32, a_multiplier=2**31, b_multiplier=2**31,
                        out_zero_point=2**62, out_format=i64)
    v = 2**31 - 1
    got = ops.add(np.array([v, -v, 0]), np.array([v, -v, 5]), big)
    want = [min(2**63 - 1, max(-(2**63), x * 2**31 + y * 2**31 + 2**62))
            for x, y in ((v, v), (-v, -v), (0, 5))]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64), strict=True)


def test_requantize_output_zero_point_saturates_instead_of_wrapping():
    """y + out_zero_point beyond int64 (an int64 output format with a zero point near 2^63)
    saturates to the format's bounds, for the TFLite and the dyadic families: the result is
    the exact Python-int sum of the zero-point-free result and the zero point, clamped."""
    i64 = IntFormat(64, True)
    x = np.array([5, -5, 0, 7])
    for fam, m, s in (("double", 1 << 30, 0), ("single", 1 << 30, 0), ("dyadic", 1, 1)):
        r = "half_away" if fam == "dyadic" else None  # TFLite fixes its roundings
        y = ops.requantize(x, ops.RequantParams(fam, (m,), (s,), r,
                                                out_format=i64)).tolist()
        assert y[0] > 0 and y[1] < 0  # both directions of overflow are exercised
        for zp in (2**63 - 1, 2**63 - 2, -(2**63), -(2**63) + 1):
            p = ops.RequantParams(fam, (m,), (s,), r, out_zero_point=zp,
                                  out_format=i64)
            want = [min(2**63 - 1, max(-(2**63), v + zp)) for v in y]
            got = ops.requantize(x, p)
            np.testing.assert_array_equal(got, np.array(want, dtype=np.int64), strict=True)
