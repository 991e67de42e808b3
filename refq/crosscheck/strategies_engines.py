"""Hypothesis strategies of the engine requantization families (``fp32``, ``fp64``,
``double_up``), the generators their variant declarations point to
(:mod:`refq.ops.requantize_fp32` …): parameters over their whole ranges, inputs over the
int32 range with the values that separate the roundings (accumulators around 2^24, near-ties
of x·multiplier, exact ties of both signs).

Importing this module needs hypothesis (``pip install refq[test]``).
"""

from __future__ import annotations

from hypothesis import strategies as st

from refq.crosscheck.strategies import _OUT, _case, _shape, _values, requantize_tflite
from refq.golden.case import Case
from refq.ops import RequantParams
from refq.ops.registry import Variant


def _near_ties(draw: st.DrawFn, m: int, c: int, k_max: int) -> list[int]:
    """x = ⌊(2k+1)·2^(c-1)/m⌋: x·m/2^c within one step of a .5 tie, inside int32."""
    out = []
    if m and c:
        for k in draw(st.lists(st.integers(-k_max, k_max), min_size=1, max_size=4)):
            v = ((2 * k + 1) << (c - 1)) // m
            if -(2**31) <= v < 2**31:
                out.append(v)
    return out


@st.composite
def requantize_fp32(draw: st.DrawFn, v: Variant) -> Case:
    """``fp32``: significands m < 2^24 (edges and random), shifts 0..63; x over int32 with
    values around 2^24 (x itself rounded to binary32) and near-ties of x·m/2^c."""
    m = draw(st.one_of(st.sampled_from([0, 1, 3, (1 << 24) - 1, 1 << 23]),
                       st.integers(1 << 23, (1 << 24) - 1), st.integers(1, (1 << 24) - 1)))
    c = draw(st.one_of(st.integers(0, 63), st.integers(20, 40)))
    x = _values(draw, _shape(draw), -(2**31), 2**31 - 1,
                [0, 1, -1, 2**24 + 1, -(2**24) - 3, 2**31 - 1, -(2**31),
                 *_near_ties(draw, m, c, 2**20)])
    out = draw(_OUT)
    p = RequantParams(family="fp32", multiplier=(m,), shift=(c,),
                      out_zero_point=draw(st.integers(out.min, out.max)), out_format=out)
    return _case(v.key, p, {"x": x})


@st.composite
def requantize_fp32_zp(draw: st.DrawFn, v: Variant) -> Case:
    """``fp32_zp``: as ``fp32``, with small shifts and odd zero points often (ties of
    x·m/2^c + zp go to even), and values whose binary32 product has bits below the sum's
    precision."""
    m = draw(st.one_of(st.sampled_from([1, 3, (1 << 24) - 1, 1 << 23]),
                       st.integers(1, (1 << 24) - 1)))
    c = draw(st.one_of(st.integers(0, 4), st.integers(0, 63), st.integers(20, 40)))
    x = _values(draw, _shape(draw), -(2**31), 2**31 - 1,
                [0, 1, -1, 3, -3, 2**24 + 1, 2**31 - 1, -(2**31),
                 *_near_ties(draw, m, c, 2**20)])
    out = draw(_OUT)
    p = RequantParams(family="fp32_zp", multiplier=(m,), shift=(c,),
                      out_zero_point=draw(st.integers(out.min, out.max)), out_format=out)
    return _case(v.key, p, {"x": x})


@st.composite
def requantize_fp64(draw: st.DrawFn, v: Variant) -> Case:
    """``fp64``: 53-bit significands, and products of two 24-bit ones (what TFLite's
    double(s_in)·double(s_w) is); shifts 40..90; x over int32 with near-ties."""
    m = draw(st.one_of(st.integers(1 << 52, (1 << 53) - 1), st.integers(0, (1 << 53) - 1),
                       st.tuples(st.integers(1 << 23, (1 << 24) - 1),
                                 st.integers(1 << 23, (1 << 24) - 1)).map(lambda t: t[0] * t[1])))
    c = draw(st.integers(40, 90))
    x = _values(draw, _shape(draw), -(2**31), 2**31 - 1,
                [0, 1, -1, 2**31 - 1, -(2**31), *_near_ties(draw, m, c, 2**12)])
    out = draw(_OUT)
    p = RequantParams(family="fp64", multiplier=(m,), shift=(c,),
                      out_zero_point=draw(st.integers(out.min, out.max)), out_format=out)
    return _case(v.key, p, {"x": x})


def requantize_double_up(v: Variant) -> st.SearchStrategy[Case]:
    """``double_up``: the TFLite multiplier strategy (every multiplier and shift range, exact
    ties of both signs) under the ruy rule."""
    return requantize_tflite(v)


__all__ = ["requantize_double_up", "requantize_fp32", "requantize_fp32_zp", "requantize_fp64"]
