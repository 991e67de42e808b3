"""The ``affine`` movement op (x·m + b) never wraps modulo 2^64: an exact result outside
int64 is a RangeError naming the op, in the plain op and in the interpreter (whose declared-
format check alone would accept a wrapped value that lands inside the format)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import refq.program.movement as mv
from refq.errors import RangeError
from refq.intmath import IntFormat
from refq.program import Op, Program, run

I64 = st.integers(-(2**63), 2**63 - 1)


def _affine_program(m: int, b: int) -> Program:
    p = Program("aff")
    p.declare("x", (-1, 2), IntFormat(40, True), "input")
    p.declare("y", (-1, 2), IntFormat(40, True))
    p.const("m", np.array([m, 1], dtype=np.int64), IntFormat(40, True))
    p.const("b", np.array([b, 0], dtype=np.int64), IntFormat(40, True))
    p.add(Op("move", "affine", ("x", "m", "b"), ("y",), {}, "aff"))
    p.outputs = ["y"]
    p.validate()
    return p


def test_a_wrapping_product_is_refused_not_wrapped_into_the_format() -> None:
    # (2^32 + 1)·2^32 = 2^64 + 2^32 wraps to 2^32, inside int<40>: only the int64 check
    # can tell
    x = np.array([[2**32 + 1, 5]], dtype=np.int64)
    prog = _affine_program(2**32, 0)
    for keep in ("all", "outputs"):
        with pytest.raises(RangeError, match="affine"):
            run(prog, {"x": x}, keep=keep)
    with pytest.raises(RangeError, match="affine"):
        mv.affine(x, prog.consts["m"], prog.consts["b"])
    # the same program on values whose product fits: exact, and the format check still
    # refuses a result outside int<40>
    ok = np.array([[3, -7], [-(2**6), 2**20]], dtype=np.int64)
    np.testing.assert_array_equal(run(prog, {"x": ok})["y"],
                                  np.array([[3 * 2**32, -7], [-(2**38), 2**20]]), strict=True)
    with pytest.raises(RangeError):
        run(prog, {"x": np.array([[2**8, 0]], dtype=np.int64)})


@given(st.lists(I64, min_size=1, max_size=4), I64, I64)
@example([2**62], 2, 0)  # 2^63: one past int64
@example([2**62], 2, -1)  # 2^63 - 1 exactly, although x·m alone leaves int64
@example([-(2**62)], 2, 0)  # -2^63 exactly
@example([-(2**63)], -1, 0)  # 2^63: |-2^63| must not wrap in the bound
@example([-(2**63)], 1, -1)  # one below int64
@example([3, -5], 0, 2**63 - 1)
def test_affine_equals_python_integers_or_raises(xs: list[int], m: int, b: int) -> None:
    x = np.array(xs, dtype=np.int64)
    want = [v * m + b for v in xs]  # Python integers: exact
    if all(-(2**63) <= w < 2**63 for w in want):
        (got,) = mv.affine(x, np.array(m, dtype=np.int64), np.array(b, dtype=np.int64))
        np.testing.assert_array_equal(got, np.array(want, dtype=np.int64), strict=True)
    else:
        with pytest.raises(RangeError, match="affine"):
            mv.affine(x, np.array(m, dtype=np.int64), np.array(b, dtype=np.int64))
