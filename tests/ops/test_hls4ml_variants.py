"""The hls4ml kernel variants without hls4ml: structure of the sums, the float → ap_fixed
parameter cast, parameter validation. (Bit-exactness against hls4ml itself:
tests/crosscheck/test_hls4ml.py.)"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refq.errors import SpecError
from refq.golden.cases_hls4ml import layernorm_catalogue, softmax_catalogue
from refq.intmath.apfixed import ApType
from refq.ops import softmax_hls4ml_latency, softmax_hls4ml_stable
from refq.ops.softmax_hls4ml import top_bits, tree_sum
from refq.params.hls4ml import ap_from_float


@given(st.lists(st.integers(-2048, 2047), min_size=1, max_size=40))
def test_tree_sum_exact_or_modular(values: list[int]) -> None:
    """A wide accumulator gives the plain sum; a wrapping narrow one the sum mod 2^W (wrap
    is associative, so the tree order cannot matter) — two facts independent of the tree.
    (The elements are of the accumulator type already, as in hls4ml.)"""
    e = np.array([values], dtype=np.int64)
    assert int(tree_sum(e, ApType(48, 48))[0]) == sum(values)
    w = int(tree_sum(e, ApType(12, 12))[0])
    assert (w - sum(values)) % 4096 == 0 and -2048 <= w < 2048


def test_tree_sum_saturation_depends_on_the_tree() -> None:
    """With a saturating accumulator the order matters: hls4ml's left part is
    2^⌊log2(n - 1)⌋ elements — [[7, 7 | 7, -7] | -7] for n = 5 at ap_fixed<4,4,SAT>:
    sat(sat(7 + 7) + (7 - 7)) = 7, then 7 - 7 = 0; a left-to-right loop gives -7 and the
    exact sum is 7."""
    t = ApType(4, 4, True, "AP_TRN", "AP_SAT")
    e = np.array([[7, 7, 7, -7, -7]], dtype=np.int64)
    assert int(tree_sum(e, t)[0]) == 0


def test_top_bits_reads_unsigned() -> None:
    t = ApType(8, 4, True)
    assert top_bits(np.array([-1, 0, 127, -128]), t, 3).tolist() == [7, 0, 3, 4]


def test_ap_from_float() -> None:
    t = ApType(8, 4, True, "AP_RND", "AP_SAT")
    assert ap_from_float(1.5, t) == 24
    assert ap_from_float(-0.03125, t) == 0  # -1/32 is a tie at 2^-4: AP_RND goes up
    assert ap_from_float(float("inf"), t) == 127
    assert ap_from_float(float("-inf"), t) == -128
    assert ap_from_float(float("inf"), ApType(8, 4)) == 0  # AP_WRAP: 2^big wraps to 0
    assert ap_from_float(1e-30, ApType(8, 4)) == 0 and ap_from_float(-1e-30, ApType(8, 4)) == -1
    with pytest.raises(SpecError):
        ap_from_float(float("nan"), t)


def test_rows_are_independent() -> None:
    p = softmax_catalogue()["stable"]
    rng = np.random.default_rng(0)
    x = rng.integers(-3000, 3000, (5, 12))
    whole = softmax_hls4ml_stable(x, p)
    for r in range(5):
        np.testing.assert_array_equal(softmax_hls4ml_stable(x[r:r + 1], p), whole[r:r + 1],
                                      strict=True)
    with pytest.raises(SpecError):
        softmax_hls4ml_latency(x, p)


def test_params_refuse_bad_tables() -> None:
    p = softmax_catalogue()["stable"]
    with pytest.raises(SpecError, match="power of 2"):
        dataclasses.replace(p, exp_table=p.exp_table[:1000])
    with pytest.raises(SpecError):
        dataclasses.replace(p, inv_table=(1 << 20,) * 1024)
    ln = layernorm_catalogue()
    with pytest.raises(SpecError, match="per channel"):
        dataclasses.replace(ln, bias=ln.bias[:3])
