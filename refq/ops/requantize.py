"""Requantization: an int32/int64 accumulator → a narrow output format, by named families.

Families (DESIGN.md numeric contract 3; METHODS.md §3):

``double``  TFLite default build: MultiplyByQuantizedMultiplier with two roundings
            (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT; both ties away from
            zero). ``multiplier`` in [2^30, 2^31) (or 0), ``shift`` in [-31, 30] is the
            exponent (positive = left shift). Input must be int32.
``single``  TFLITE_SINGLE_ROUNDING: (x·M + 2^(30-shift)) >> (31-shift), ties toward +∞.
``dyadic``  I-ViT / HAWQ: round(x·b / 2^c) with a named rounding; ``multiplier`` = b >= 0,
            ``shift`` = c in 0..63 (a RIGHT shift). x·b must fit int64 (RangeError).

Then ``out = saturate(y + out_zero_point, out_format)`` (saturation is the spec here).
The input zero point is subtracted first (``x - in_zero_point``, checked against int32 for
the TFLite families). Per-channel parameters (tuples of length C) apply along ``axis``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import (
    INT8,
    INT32,
    IntArray,
    IntFormat,
    Rounding,
    as_int64,
    check_range,
    dyadic_requantize_saturate,
    multiply_by_quantized_multiplier,
)
from refq.intmath.formats import saturate_offset
from refq.intmath.rounding import check_rounding
from refq.ops._common import Params, need_choice, need_format, need_int, need_ints, per_channel

FAMILIES = ("double", "single", "dyadic")


@dataclass(frozen=True)
class RequantParams(Params):
    """Integer parameters of :func:`requantize` (see the module docstring)."""

    family: str = "double"
    multiplier: tuple[int, ...] = (1 << 30,)
    shift: tuple[int, ...] = (0,)
    rounding: str = "half_even"
    in_zero_point: int = 0
    out_zero_point: int = 0
    out_format: IntFormat = INT8

    def __post_init__(self) -> None:
        need_choice(self.family, "RequantParams.family", FAMILIES)
        m = need_ints(self.multiplier, "RequantParams.multiplier", 0, 2**62)
        s = need_ints(self.shift, "RequantParams.shift", -31, 63)
        object.__setattr__(self, "multiplier", m)
        object.__setattr__(self, "shift", s)
        check_rounding(self.rounding, "RequantParams.rounding")
        need_int(self.in_zero_point, "RequantParams.in_zero_point")
        fmt = need_format(self.out_format, "RequantParams.out_format")
        need_int(self.out_zero_point, "RequantParams.out_zero_point", fmt.min, fmt.max)
        if self.family in ("double", "single"):
            for v in m:
                if v != 0 and not (1 << 30) <= v < (1 << 31):
                    raise SpecError(f"RequantParams.multiplier {v}: not 0 nor in [2^30, 2^31)")
            if min(s) < -31 or max(s) > 30:
                raise SpecError("RequantParams.shift: TFLite shifts lie in [-31, 30]")
        elif min(s) < 0:
            raise SpecError("RequantParams.shift: dyadic right shift c must be in 0..63")


def requantize(x: Any, params: RequantParams, axis: int = -1) -> IntArray:
    """Requantize an integer accumulator ``x`` with ``params`` (module docstring).

    Formats: ``x`` int32 for ``double``/``single`` (checked after subtracting the input zero
    point), any int64 for ``dyadic``; output ``params.out_format`` (saturated).
    Intermediates: x - zp (int32 / int64, checked), the scaled value (int32 for TFLite, the
    exact product x·b in int64 for dyadic), y + out_zero_point (int64) before saturation.
    Accuracy: |y - x·real| <= 1/2 LSB (+1 LSB for ``double``'s two roundings worst case)
    where real = M·2^(shift-31) (TFLite) or b/2^c (dyadic).
    """
    op = "requantize"
    xa = as_int64(x, "x")
    xz = xa - np.int64(params.in_zero_point) if params.in_zero_point else xa
    c = xa.shape[axis] if xa.ndim and len(params.multiplier) > 1 else 1
    m = per_channel(params.multiplier, c, "multiplier", op)
    s = per_channel(params.shift, c, "shift", op)
    if len(params.shift) != len(params.multiplier):
        raise SpecError(f"{op}: multiplier and shift have different lengths")
    if xa.ndim and len(params.multiplier) > 1:
        bshape = [1] * xa.ndim
        bshape[axis] = c
        m = m.reshape(bshape)
        s = s.reshape(bshape)
    if params.family == "dyadic":
        rounding: Rounding = check_rounding(params.rounding)
        return dyadic_requantize_saturate(
            xz, m, s, rounding, params.out_zero_point, params.out_format
        )
    xz = check_range(xz, INT32, "x - in_zero_point", op)
    y = multiply_by_quantized_multiplier(
        xz, m, s, "double" if params.family == "double" else "single"
    )
    return _offset_saturate(y, xa, params.out_zero_point, params.out_format)


def _offset_saturate(y: IntArray, x: IntArray, zero_point: int, fmt: IntFormat) -> IntArray:
    """saturate(y + zero_point, fmt), in place on ``y`` unless it may share memory with the
    caller's ``x`` (refq.intmath.formats.saturate_offset: no int64 wrap of the sum)."""
    in_place = y.shape == x.shape and not np.may_share_memory(y, x)
    return saturate_offset(y, zero_point, fmt, in_place=in_place)


__all__ = ["FAMILIES", "RequantParams", "requantize"]
