"""hls4ml's table softmax (``nnet_activation.h``: ``softmax_stable`` and ``softmax_latency``,
hls4ml 1.3) as integer rules on ap_fixed raw codes, with both tables pinned in the params.

Every value below is the raw code of its C++ type (refq.intmath.apfixed.ApType); a cast to
a type is :func:`refq.intmath.apfixed.ap_cast` with that type's quantization and overflow
mode, exactly what the assignment does in C++. ``top(v, T, N)`` is the table index hls4ml
slices from a value of type T (``softmax_idx_from_real_val``): the N most significant of
T's W raw bits, read unsigned — (v mod 2^W) >> (W - N).

``stable`` (default in hls4ml)::

    m    = max_j x_j                                  data_T (exact)
    d_i  = cast(m - x_i → inp_norm_t)                 (the difference is exact first)
    e_i  = cast(exp_table[top(d_i, inp_norm_t, N_exp)] → accum_t)
    s    = tree_sum(e) with every partial sum cast to accum_t   (``reduce<Op_add>``:
           left = 2^⌊log2(n - 1)⌋ elements, right = the rest, recursively)
    inv  = inv_table[top(cast(s → inv_inp_t), inv_inp_t, N_inv)]
    y_i  = cast(e_i · inv → res_T)                    (the product is exact first)

``latency``: the same without the max — e_i = cast(exp_table[top(x_i, data_T, N_exp)]).

Tables (pinned; refq.params.hls4ml_softmax_params derives them as hls4ml does: the float
``std::exp`` / ``1 / x`` of each index's value, cast to the table type): ``exp_table`` raw
codes of ``exp_table_type`` (stable: exp(-v) of the normalised difference v; latency:
exp(v)), ``inv_table`` raw codes of ``inv_table_type`` (1/v of the sum's top bits). Formats:
x raw codes of ``in_type`` (checked); output raw codes of ``out_type``; intermediates as
named above (e·inv and the sums are int64: widths checked in the params). Source: hls4ml
``templates/vivado/nnet_utils/nnet_activation.h`` and ``nnet_common.h`` (``reduce``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import IntArray
from refq.intmath.apfixed import ApType, ap_cast
from refq.ops._common import Params, int_input, need_choice, need_ints

IMPLEMENTATIONS = ("stable", "latency")


@dataclass(frozen=True)
class Hls4mlSoftmaxParams(Params):
    """Types (C++ spellings) and pinned tables of hls4ml's softmax (module docstring)."""

    implementation: str
    in_type: str
    out_type: str
    exp_table_type: str
    inv_table_type: str
    accum_type: str
    inv_inp_type: str
    inp_norm_type: str
    exp_table: tuple[int, ...]
    inv_table: tuple[int, ...]

    def __post_init__(self) -> None:
        need_choice(self.implementation, "Hls4mlSoftmaxParams.implementation", IMPLEMENTATIONS)
        for name in ("in_type", "out_type", "exp_table_type", "inv_table_type", "accum_type",
                     "inv_inp_type", "inp_norm_type"):
            object.__setattr__(self, name, ApType.parse(getattr(self, name)).name)
        t = self.types
        for name, table, typ in (("exp_table", self.exp_table, t["exp_table_type"]),
                                 ("inv_table", self.inv_table, t["inv_table_type"])):
            vals = need_ints(table, f"Hls4mlSoftmaxParams.{name}", typ.fmt.min, typ.fmt.max)
            object.__setattr__(self, name, vals)
            n = len(vals)
            if n & (n - 1) or n < 2:
                raise SpecError(f"Hls4mlSoftmaxParams.{name}: length {n} is not a power of 2")
        index_of = t["inp_norm_type"] if self.implementation == "stable" else t["in_type"]
        for table, typ in ((self.exp_table, index_of), (self.inv_table, t["inv_inp_type"])):
            if (len(table) - 1).bit_length() > typ.width:
                raise SpecError(f"Hls4mlSoftmaxParams: a table of {len(table)} entries needs "
                                f"more index bits than {typ.name} has")
        if t["accum_type"].width + t["inv_table_type"].width > 63:
            raise SpecError("Hls4mlSoftmaxParams: accum and inv_table widths must sum to <= 63 "
                            "(their exact product is an int64)")
        if t["accum_type"].width > 62:
            raise SpecError("Hls4mlSoftmaxParams: accum_type wider than 62 bits")

    @cached_property
    def types(self) -> dict[str, ApType]:
        return {n: ApType.parse(getattr(self, n)) for n in (
            "in_type", "out_type", "exp_table_type", "inv_table_type", "accum_type",
            "inv_inp_type", "inp_norm_type")}


def top_bits(v: IntArray, t: ApType, n: int) -> IntArray:
    """The n most significant raw bits of type ``t`` read unsigned (hls4ml's table index)."""
    unsigned = v & np.int64((1 << t.width) - 1) if t.width < 64 else v
    return np.asarray(unsigned >> np.int64(t.width - n), dtype=np.int64)


def tree_sum(e: IntArray, acc: ApType) -> IntArray:
    """hls4ml ``reduce<accum_t, n, Op_add>`` along the last axis: a balanced tree (left part
    2^⌊log2(n - 1)⌋ elements) whose every sum a + b (exact) is cast to ``acc``."""
    n = e.shape[-1]
    if n == 1:
        return e[..., 0]
    if n == 2:
        return ap_cast(e[..., 0] + e[..., 1], acc.frac_bits, acc)
    left = 1 << ((n - 1).bit_length() - 1)  # pow2(floorlog2(n - 1))
    a, b = tree_sum(e[..., :left], acc), tree_sum(e[..., left:], acc)
    return ap_cast(a + b, acc.frac_bits, acc)


def softmax_hls4ml(x: Any, params: Hls4mlSoftmaxParams) -> IntArray:
    """hls4ml's softmax along the last axis (module docstring): raw codes of ``in_type`` →
    raw codes of ``out_type``."""
    p = params
    t = p.types
    dt, acc = t["in_type"], t["accum_type"]
    xa = int_input(x, dt.fmt, "x", "softmax.hls4ml", 1)
    n_exp = (len(p.exp_table) - 1).bit_length()
    n_inv = (len(p.inv_table) - 1).bit_length()
    exp_table = np.asarray(p.exp_table, dtype=np.int64)
    if p.implementation == "stable":
        norm = t["inp_norm_type"]
        d = ap_cast(xa.max(axis=-1, keepdims=True) - xa, dt.frac_bits, norm)
        idx = top_bits(d, norm, n_exp)
    else:
        idx = top_bits(xa, dt, n_exp)
    e = ap_cast(exp_table[idx], t["exp_table_type"].frac_bits, acc)
    s = tree_sum(e, acc)[..., None]
    inv_inp = t["inv_inp_type"]
    si = ap_cast(s, acc.frac_bits, inv_inp)
    inv = np.asarray(p.inv_table, dtype=np.int64)[top_bits(si, inv_inp, n_inv)]
    return ap_cast(e * inv, acc.frac_bits + t["inv_table_type"].frac_bits, t["out_type"])


def softmax_hls4ml_stable(x: Any, params: Hls4mlSoftmaxParams) -> IntArray:
    if params.implementation != "stable":
        raise SpecError("softmax.hls4ml_stable needs implementation='stable' params")
    return softmax_hls4ml(x, params)


def softmax_hls4ml_latency(x: Any, params: Hls4mlSoftmaxParams) -> IntArray:
    if params.implementation != "latency":
        raise SpecError("softmax.hls4ml_latency needs implementation='latency' params")
    return softmax_hls4ml(x, params)


__all__ = ["IMPLEMENTATIONS", "Hls4mlSoftmaxParams", "softmax_hls4ml", "softmax_hls4ml_latency",
           "softmax_hls4ml_stable", "top_bits", "tree_sum"]
