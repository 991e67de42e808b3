"""Requantization family ``ap_fixed``: an accumulator to an HLS ``ap_fixed<W,I,Q,O>``
type, the way HLS C++ (hls4ml, Vitis HLS) stores a wider fixed-point value in a narrower
one (DESIGN.md numeric contract 3: "HLS ap_fixed casts (quantization × overflow mode)").

    p = (x - in_zero_point) · multiplier          exact, int64 (checked)
    y = ap_cast(p, frac_bits, out_type)           raw codes of ``out_type``

``x`` is an integer of ``in_format`` (an accumulator: its real value is x·2^-F_x); the
product p, with ``frac_bits`` fractional bits, is the C++ ``accum_t * scale_t`` of a layer
that rescales (hls4ml's ApplyAlpha / a Dense whose weights carry the scale), or x itself
with ``multiplier = 1`` (a plain ``res_T y = acc;``). ``out_type`` names every property of
the result: width W, integer bits I, quantization and overflow mode (refq.intmath.apfixed
documents all seven quantization and five overflow modes; source ``ap_fixed_base.h``).
Per-channel multipliers (a tuple of length C) apply along ``axis``. There is no output zero
point: ap_fixed types have none (an asymmetric code needs an explicit ``add``).

Formats: x ``in_format`` (at most 64 bits, checked), p int64 (checked: RangeError naming the
first element whose product leaves int64), y ``out_type.fmt`` = int<W> / uint<W>. Accuracy:
exact w.r.t. the header — y is what ``ap_fixed<W,I,Q,O> y = p;`` holds, bit for bit (checked
against g++-compiled ``ap_fixed.h`` on > 100,000 cases of every mode and width).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from refq.errors import RangeError, SpecError
from refq.intmath import INT32, IntArray, IntFormat
from refq.intmath.apfixed import MAX_SHIFT, ApType, ap_cast
from refq.intmath.arrays import first_index
from refq.ops._common import Params, int_input, need_format, need_int, need_ints, per_channel
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare


@dataclass(frozen=True)
class ApFixedRequantParams(Params):
    """Parameters of :func:`requantize_apfixed`: ``out_type`` is the C++ spelling of the
    result type (e.g. ``"ap_fixed<8,3,AP_RND_CONV,AP_SAT>"``), ``frac_bits`` the
    fractional bits of (x - in_zero_point)·multiplier."""

    out_type: str = "ap_fixed<8,8,AP_RND_CONV,AP_SAT>"
    frac_bits: int = 0
    multiplier: tuple[int, ...] = (1,)
    in_zero_point: int = 0
    in_format: IntFormat = INT32

    def __post_init__(self) -> None:
        t = ApType.parse(self.out_type)
        object.__setattr__(self, "out_type", t.name)  # canonical spelling, Q and O explicit
        need_int(self.frac_bits, "ApFixedRequantParams.frac_bits", -MAX_SHIFT, 2 * MAX_SHIFT)
        if abs(self.frac_bits - t.frac_bits) > MAX_SHIFT:
            raise SpecError(f"ApFixedRequantParams: frac_bits {self.frac_bits} is "
                            f"{self.frac_bits - t.frac_bits} bits from {t.name}'s; at most "
                            f"{MAX_SHIFT}")
        m = need_ints(self.multiplier, "ApFixedRequantParams.multiplier", -(2**62), 2**62)
        object.__setattr__(self, "multiplier", m)
        fmt = need_format(self.in_format, "ApFixedRequantParams.in_format")
        need_int(self.in_zero_point, "ApFixedRequantParams.in_zero_point", fmt.min, fmt.max)

    @cached_property
    def apfixed(self) -> ApType:
        """``out_type`` as an :class:`~refq.intmath.apfixed.ApType`."""
        return ApType.parse(self.out_type)

    @property
    def out_format(self) -> IntFormat:
        """The raw codes' format: int<W> (``ap_fixed``) or uint<W> (``ap_ufixed``)."""
        return self.apfixed.fmt


def _product(x: IntArray, m: IntArray, op: str) -> IntArray:
    """x·m exactly in int64, or RangeError at the first element where it would not fit."""
    xmax = max(-int(x.min()), int(x.max())) if x.size else 0
    mmax = max(-int(m.min()), int(m.max())) if m.size else 0
    if xmax * mmax < 2**63:
        return np.asarray(x * m, dtype=np.int64)
    xb, mb = np.broadcast_arrays(x, m)
    limit = np.int64(2**63 - 1) // np.maximum(np.abs(mb), 1)
    bad = (np.abs(np.maximum(xb, -(2**63) + 1)) > limit) | ((xb == -(2**63)) & (np.abs(mb) > 1))
    if bool(bad.any()):
        idx = first_index(np.asarray(bad))
        raise RangeError(f"{op}: (x - in_zero_point)·multiplier leaves int64 at index {idx} "
                         f"(x - zp = {int(xb[idx])}, multiplier = {int(mb[idx])})")
    return np.asarray(x * m, dtype=np.int64)


def requantize_apfixed(x: Any, params: ApFixedRequantParams, axis: int = -1) -> IntArray:
    """Cast an accumulator to ``params.out_type`` (module docstring).

    Formats: ``x`` in ``params.in_format``; output raw codes in ``params.out_format``.
    Intermediates: x - in_zero_point and its product with the multiplier, int64 (checked).
    Rounding and saturation: the quantization and overflow modes of ``out_type``.
    """
    op = "requantize.ap_fixed"
    p = params
    xa = int_input(x, p.in_format, "x", op)
    xz = xa - np.int64(p.in_zero_point) if p.in_zero_point else xa
    if len(p.multiplier) > 1:
        if xa.ndim == 0:
            raise SpecError(f"{op}: per-channel multipliers need an axis, x is a scalar")
        c = xa.shape[axis]
        m = per_channel(p.multiplier, c, "multiplier", op)
        shape = [1] * xa.ndim
        shape[axis] = c
        prod = _product(xz, m.reshape(shape), op)
    elif p.multiplier[0] == 1:
        prod = xz
    else:
        prod = _product(xz, np.asarray(p.multiplier[0], dtype=np.int64), op)
    return ap_cast(prod, p.frac_bits, p.apfixed)


declare(Variant(
    "requantize", "ap_fixed", requantize_apfixed, ApFixedRequantParams,
    title="HLS ap_fixed<W,I,Q,O> cast of an accumulator (every quantization × overflow mode)",
    accepts="x: in_format (an accumulator at 2^-F_x; x·multiplier has frac_bits fractional "
            "bits)",
    produces="out_type's raw codes: int<W> (ap_fixed) or uint<W> (ap_ufixed), one LSB = "
             "2^-(W-I)",
    in_formats=lambda p: (p.in_format,),
    out_format=lambda p: p.out_format,
    widths=(Width("(x - in_zero_point)·multiplier", "int64"),
            Width("⌊p / 2^s⌋ + increment", "int64", "proven"),
            Width("out", "out_type raw (W bits)", "proven")),
    roundings=(RoundingStep("quantization to 2^-(W-I) (the Q of out_type)", "params.out_type"),),
    output="proven",
    source="Xilinx ap_types ap_fixed_base.h (operator=, quantization_adjust, overflow_adjust) "
           "as shipped with hls4ml; Vitis HLS UG1399",
    accuracy=None,
    golden=(Ref("refq.golden.cases_hls4ml:cast_cases"),),
    strategy=Ref("refq.crosscheck.strategies:requantize_apfixed"),
    meta={"coverage.bins": ("ends:x", "ends:out"),  # boundary points only
          "coverage.model": Ref("refq.golden.coverage_models:requantize_ap_fixed")},
))

__all__ = ["ApFixedRequantParams", "requantize_apfixed"]
