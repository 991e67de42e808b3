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

``legacy`` (``softmax_legacy``; one table type ``table_t`` for both tables — hls4ml 1.3's
softmax config does not set it, so it is ``nnet::activ_config::table_t`` =
``ap_fixed<18,8>`` whatever the configured table precision)::

    for each i:  s_i = 0;  for each j:  s_i = cast(s_i + e_ij → table_t)
        e_ii = cast(1 → table_t);  e_ij = exp_table[clamp(trunc((x_j - x_i)·N_exp / 16)
                                                          + N_exp / 2, 0, N_exp - 1)]
    y_i = cast(inv_table[clamp(trunc(s_i · N_inv / 64), 0, N_inv - 1)] → res_T)

(C++ ``int`` of an ap_fixed: truncation toward zero; the products and quotients are exact
before it.)

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
from refq.ops.hls4ml_io import ap_types_io
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare

IMPLEMENTATIONS = ("stable", "latency", "legacy")


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
        if self.implementation == "legacy":
            if self.exp_table_type != self.inv_table_type:
                raise SpecError("Hls4mlSoftmaxParams: legacy uses one table type for both")
            return
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


def _trunc_div(a: IntArray, b: int) -> IntArray:
    """a / b (b > 0) truncated toward zero, exactly."""
    q = np.abs(a) // np.int64(b)
    return np.asarray(np.where(a < 0, -q, q), dtype=np.int64)


def _legacy(xa: IntArray, p: Hls4mlSoftmaxParams) -> IntArray:
    t = p.types
    dt, tt = t["in_type"], t["exp_table_type"]
    ne, ni = len(p.exp_table), len(p.inv_table)
    exp_table = np.asarray(p.exp_table, dtype=np.int64)
    d = xa[..., None, :] - xa[..., :, None]  # [..., i, j] = x_j - x_i (exact)
    idx = np.clip(_trunc_div(d * np.int64(ne), 16 << dt.frac_bits) + (8 * ne) // 16, 0, ne - 1)
    e = exp_table[idx]
    n = xa.shape[-1]
    diag = np.arange(n)
    e[..., diag, diag] = ap_cast(np.array(1), 0, tt)
    s = np.zeros(xa.shape, dtype=np.int64)
    for j in range(n):
        s = ap_cast(s + e[..., j], tt.frac_bits, tt)
    k = np.clip(_trunc_div(s * np.int64(ni), 64 << tt.frac_bits), 0, ni - 1)
    return ap_cast(np.asarray(p.inv_table, dtype=np.int64)[k], tt.frac_bits, t["out_type"])


def softmax_hls4ml(x: Any, params: Hls4mlSoftmaxParams) -> IntArray:
    """hls4ml's softmax along the last axis (module docstring): raw codes of ``in_type`` →
    raw codes of ``out_type``."""
    p = params
    t = p.types
    dt, acc = t["in_type"], t["accum_type"]
    xa = int_input(x, dt.fmt, "x", "softmax.hls4ml", 1)
    if p.implementation == "legacy":
        return _legacy(xa, p)
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


def softmax_hls4ml_legacy(x: Any, params: Hls4mlSoftmaxParams) -> IntArray:
    if params.implementation != "legacy":
        raise SpecError("softmax.hls4ml_legacy needs implementation='legacy' params")
    return softmax_hls4ml(x, params)


_SOURCE = ("hls4ml 1.3 templates/vivado/nnet_utils/nnet_activation.h ({}), nnet_common.h "
           "(reduce); ap_types ap_fixed_base.h")
_GOLDEN = (Ref("refq.golden.cases_hls4ml:softmax_cases"),)
_STRATEGY = Ref("refq.crosscheck.strategies:hls4ml_rows")
_COVERAGE = {"coverage.bins": ("ends:x", "rows:rows", "ends:out"),  # boundary points only
             "coverage.model": Ref("refq.golden.coverage_models:hls4ml_rows",
                                   {"op": "softmax"})}
_TABLE_ROUNDINGS = (
    RoundingStep("e → accum_type, every partial sum → accum_type", "params.accum_type"),
    RoundingStep("Σ → inv_inp_type", "params.inv_inp_type"),
    RoundingStep("e·inv → out_type", "params.out_type"),
)


def _declare(name: str, fn: Any, title: str, widths: tuple[Width, ...],
             roundings: tuple[RoundingStep, ...], accuracy: str) -> None:
    """One hls4ml softmax variant: ap_fixed raw codes in and out, output proven by the
    out_type cast, hls4ml's function ``softmax_<name>`` as its source."""
    declare(Variant(
        "softmax", f"hls4ml_{name}", fn, Hls4mlSoftmaxParams, title=title, **ap_types_io(),
        widths=widths, roundings=roundings, output="proven",
        source=_SOURCE.format(f"softmax_{name}"), accuracy=accuracy,
        golden=_GOLDEN, strategy=_STRATEGY, meta=dict(_COVERAGE),
    ))


_declare(
    "stable", softmax_hls4ml_stable,
    "hls4ml softmax_stable: max subtracted, exp and 1/x tables on ap_fixed",
    (Width("max - x", "in_type + 1 bit", "proven"),
     Width("d", "inp_norm_type", "proven"), Width("e, Σ", "accum_type", "proven"),
     Width("e·inv", "int<W_acc + W_inv>", "proven"), Width("out", "out_type", "proven")),
    (RoundingStep("max - x → inp_norm_type", "params.inp_norm_type"), *_TABLE_ROUNDINGS),
    "the tables' (hls4ml's own: table resolution 2^-(N) of the index type)",
)
_declare(
    "latency", softmax_hls4ml_latency,
    "hls4ml softmax_latency: exp table indexed by the input's top bits, 1/x table",
    (Width("e, Σ", "accum_type", "proven"),
     Width("e·inv", "int<W_acc + W_inv>", "proven"), Width("out", "out_type", "proven")),
    _TABLE_ROUNDINGS,
    "the tables' (no max subtraction: large inputs leave the exp table's range)",
)
_declare(
    "legacy", softmax_hls4ml_legacy,
    "hls4ml softmax_legacy: pairwise exp(x_j - x_i) table sums, 1/x table",
    (Width("x_j - x_i", "in_type + 1 bit", "proven"),
     Width("s_i", "exp_table_type (table_t)", "proven"),
     Width("out", "out_type", "proven")),
    (RoundingStep("index (x_j - x_i)·N/16", "trunc"),
     RoundingStep("s_i + e_ij → table_t", "params.exp_table_type"),
     RoundingStep("index s_i·N/64", "trunc"),
     RoundingStep("table → out_type", "params.out_type")),
    "the tables' (exp sampled on [-8, 8), 1/x on [0, 64))",
)

__all__ = ["IMPLEMENTATIONS", "Hls4mlSoftmaxParams", "softmax_hls4ml", "softmax_hls4ml_latency",
           "softmax_hls4ml_legacy", "softmax_hls4ml_stable", "top_bits", "tree_sum"]
