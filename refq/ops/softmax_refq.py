"""refq's default integer softmax: exact base-2 range reduction and a pinned 2^-f table.

    d = max(x) - x                          >= 0, int32 (checked)
    t = d · m                               m/2^c ≈ S·log2(e) (24-bit m), int48 (checked)
    u = round_half_up(t / 2^(c - L))        log2 units of 2^-L
    k = u >> L,  j = u & (2^L - 1)          integer and fraction of -log2 of exp
    e = round_half_up(T[j] / 2^min(k, 20))  T[j] = round(2^15 · 2^(-j/2^L)), uint16 table
    Σ = Σ e                                 int32 (checked; <= 2^15 · N)
    out = round_half_up(e · (2^b - 1) / Σ)  uint<b>, scale 1/(2^b - 1)

Why this shape: the exponent is reduced to base 2 exactly (one integer multiply, 24-bit
multiplier), so no polynomial error and no float; the only approximation is the 2^-L
quantization of the fraction (relative error <= ln2·2^-(L+1) = 0.14% at L = 8) and the
table's 2^-16 rounding; the output scale 1/(2^b - 1) uses every code (255 is exactly 1), and
the final division is exact with one half-up rounding. Default L = 8 (256 × 16-bit table).
Accuracy vs float softmax of the same integers: <= 1 LSB (1/255), measured < 0.75 LSB.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import RangeError, SpecError
from refq.intmath import INT16, INT32, IntArray, IntFormat, check_range, round_div, round_shift
from refq.intmath.formats import check_bounds
from refq.ops._common import Params, int_input, need_format, need_int, need_ints, signed, unsigned
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare

TABLE_ONE = 1 << 15


@dataclass(frozen=True)
class RefqSoftmaxParams(Params):
    """m/2^c ≈ S·log2(e); table T of 2^L entries (T[0] = 2^15); output bits b."""

    log2e_multiplier: int
    log2e_shift: int
    table: tuple[int, ...]
    out_bits: int = 8
    in_format: IntFormat = INT16

    def __post_init__(self) -> None:
        need_int(self.log2e_multiplier, "log2e_multiplier", 1, 2**24)
        t = need_ints(self.table, "table", 0, TABLE_ONE)
        object.__setattr__(self, "table", t)
        n = len(t)
        if n & (n - 1) or n < 2:
            raise SpecError("RefqSoftmaxParams.table: length must be a power of two >= 2")
        need_int(self.log2e_shift, "log2e_shift", (n - 1).bit_length(), 62)
        need_int(self.out_bits, "out_bits", 1, 16)
        fmt = need_format(self.in_format, "in_format")
        if fmt.bits > 17:
            raise SpecError("RefqSoftmaxParams.in_format: at most 17 bits")

    @property
    def table_bits(self) -> int:
        return (len(self.table) - 1).bit_length()


# e = round_half_up(T[j] / 2^min(k, 20)) depends on (k, j) only; k saturates at 20.
_K_MAX = 20


@lru_cache(maxsize=32)
def _exp_table(table: tuple[int, ...]) -> IntArray | None:
    """E[k·2^L + j] = round_half_up(T[j] / 2^k) for k = 0..20 (read-only), the whole of
    stage ``e`` as one lookup at index min(u, 21·2^L - 1); None when that clamp would be
    wrong (row k = 20 not constant — impossible for T <= 2^15, kept as a guard)."""
    t = np.asarray(table, dtype=np.int64)
    k = np.arange(_K_MAX + 1, dtype=np.int64)[:, None]
    e = round_shift(t[None, :], k, "half_up")
    if bool((e[-1] != e[-1, -1]).any()):
        return None
    flat = e.ravel()
    flat.setflags(write=False)
    return flat


def softmax_refq(x: Any, params: RefqSoftmaxParams) -> IntArray:
    """refq default softmax along the last axis (module docstring).

    Formats: x in ``in_format`` (scale S, zero point irrelevant); output uint<b>,
    scale 1/(2^b - 1). Roundings: half_up (named) at the fraction, the table shift and the
    division. Accuracy: <= 1 LSB against the float softmax of S·x.
    Range checks: ``max - x`` (int32) and ``t`` (int48) by their maxima (both are >= 0 by
    construction; t's maximum is max(d)·m exactly), ``sum(e)`` (int32) and ``out``.
    """
    op = "softmax_refq"
    xa = int_input(x, params.in_format, "x", op, 1)
    if xa.size <= _BLOCK or xa.shape[-1] > _BLOCK:
        return _softmax_rows(xa, params, op)
    x2 = xa.reshape(-1, xa.shape[-1])
    out = np.empty(x2.shape, dtype=np.int64)
    rows = _BLOCK // x2.shape[1]
    try:
        for r in range(0, x2.shape[0], rows):
            out[r : r + rows] = _softmax_rows(x2[r : r + rows], params, op)
    except RangeError:  # the whole-tensor pass names the offending index in ``x``'s shape
        _softmax_rows(xa, params, op)
        raise  # pragma: no cover - a block's error is always an error of the whole
    return out.reshape(xa.shape)


_BLOCK = 1 << 17
"""Rows of at most this many elements in all are computed together (each row is independent
of the others): the eight passes then run on cache-resident blocks (measured 1.5-1.8x faster
than whole-tensor passes on attention scores of DeiT-S at batch 8)."""


def _softmax_rows(xa: IntArray, p: RefqSoftmaxParams, op: str) -> IntArray:
    """The softmax of every row of ``xa`` (already checked against ``p.in_format``)."""
    d = xa.max(axis=-1, keepdims=True) - xa  # >= 0
    dmax = int(d.max()) if d.size else 0
    if dmax > INT32.max:
        check_bounds(d, INT32, "max - x", op)
    mult = p.log2e_multiplier
    table = _d_table(p) if dmax * mult <= signed(48).max else None
    if table is not None and dmax < table.size:
        e = np.take(table, d)  # stages t, u and e at once: the same integers (_d_table)
    else:
        d *= np.int64(mult)  # t = d·m, in place
        if dmax * mult > signed(48).max:
            check_bounds(d, signed(48), "t", op)
        L = p.table_bits
        u = round_shift(d, p.log2e_shift - L, "half_up")
        exp_table = _exp_table(p.table)
        if exp_table is not None:
            e = np.take(exp_table, u, mode="clip")  # u >= 0: clip is min(u, 21·2^L - 1)
        else:  # pragma: no cover - unreachable for tables within 0..2^15
            k = np.minimum(u >> L, _K_MAX)
            j = u & np.int64((1 << L) - 1)
            e = round_shift(np.asarray(p.table, dtype=np.int64)[j], k, "half_up")
    total = check_range(e.sum(axis=-1, keepdims=True), INT32, "sum(e)", op)
    e = np.multiply(e, np.int64((1 << p.out_bits) - 1), dtype=np.int64)
    out = round_div(e, total, "half_up")
    check_bounds(out, unsigned(p.out_bits), "out", op)
    return out


def _d_table(p: RefqSoftmaxParams) -> npt.NDArray[np.int32] | None:
    """E_d[d] = e for every d = max - x the input format allows (0..max - min, at most
    2^17 + 1 entries): stages t = d·m, u = round_half_up(t / 2^(c - L)) and e = E[min(u,
    21·2^L - 1)] computed once, with the kernel's own functions, for each d (so ``E_d[d]``
    is the integer those stages give); int32 (e <= 2^15). None where the exp table is."""
    return _d_table_cached(p.log2e_multiplier, p.log2e_shift, p.table, p.in_format)


_D_TABLE_MAX = (1 << 17) + 1
"""Most entries of a per-d table (1 MiB of int32 at most per cached parameter set)."""


@lru_cache(maxsize=32)
def _d_table_cached(mult: int, shift: int, table: tuple[int, ...],
                    fmt: IntFormat) -> npt.NDArray[np.int32] | None:
    exp_table = _exp_table(table)
    if exp_table is None:  # pragma: no cover - unreachable for tables within 0..2^15
        return None
    if fmt.max - fmt.min + 1 > _D_TABLE_MAX:  # wide input formats: the staged path
        return None
    d = np.arange(fmt.max - fmt.min + 1, dtype=np.int64)
    L = (len(table) - 1).bit_length()
    u = round_shift(d * np.int64(mult), shift - L, "half_up")
    e = np.take(exp_table, u, mode="clip").astype(np.int32)
    e.setflags(write=False)
    return e


declare(Variant(
    "softmax", "refq", softmax_refq, RefqSoftmaxParams,
    title="exact base-2 range reduction and a pinned 2^-j/2^L table (refq's default)",
    accepts="x: in_format (at most 17 bits; default int16), scale S",
    produces="uint<out_bits>, scale 1/(2^out_bits - 1)",
    out_format=lambda p: unsigned(p.out_bits),
    widths=(Width("d = max(x) - x", "int32"), Width("t = d·m", "int48"),
            Width("table T", "uint16 (2^L entries, <= 2^15)", "proven"),
            Width("sum(e)", "int32"), Width("out", "uint<out_bits>")),
    roundings=(RoundingStep("u = t / 2^(c - L)", "half_up"),
               RoundingStep("e = T[j] / 2^min(k, 20)", "half_up"),
               RoundingStep("out = e·(2^b - 1) / sum(e)", "half_up")),
    output="checked",
    source="refq",
    accuracy="<= 1 LSB (1/255) against the float softmax of S·x; measured < 0.75 LSB",
    derive=Ref("refq.params.softmax:refq_softmax_params"),
    golden=(Ref("refq.golden.cases_kernels:softmax_rows", {"seed": 3000, "scale": "0.01"}),),
    strategy=Ref("refq.crosscheck.strategies:softmax_rows", {"scales": ("2e-3", "0.1")}),
    meta={"lower": Ref("refq.program.lower_kernels:softmax_refq"), "lower.in_bits": 16,
          "tosa.lowering": Ref("refq.interop.tosa.softmax:refq"),
          "coverage.bins": ("ends:x", "rows:rows", "ends:out", "tie:t / 2^(c-L)", "ends:j",
                            "clamp:k", "tie:T[j] / 2^min(k, 20)", "tie:e·(2^b - 1) / Σe"),
          "coverage.model": Ref("refq.golden.coverage_models:softmax_refq"),
          "coverage.unreachable": {
              "t / 2^(c-L): tie-": "t = (max(x) - x)·m >= 0",
              "t / 2^(c-L): near_tie-": "t = (max(x) - x)·m >= 0",
              "k: below": "k = u >> L >= 0",
              "T[j] / 2^min(k, 20): tie-": "table entries are >= 0",
              "T[j] / 2^min(k, 20): near_tie-": "table entries are >= 0",
              "e·(2^b - 1) / Σe: tie-": "e >= 0",
              "e·(2^b - 1) / Σe: near_tie-": "e >= 0"},
          "coverage.corners": Ref("refq.golden.cases_corners:softmax")},
))

_ = INT16
__all__ = ["RefqSoftmaxParams", "softmax_refq"]
