"""GELU parameters from real scales. The LUT uses float64 math (math.erf) once and stores
integers; TFLite builds its table in float32, which can differ by 1 code at ties."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from refq.errors import SpecError
from refq.intmath import INT8, INT32, IntFormat
from refq.intmath.from_real import round_fraction
from refq.ops.gelu import GeluLutParams, IBertGeluParams, ShiftGeluParams
from refq.params._real import exact, floor_frac

IBERT_K = Fraction("1.4142")
IBERT_ERF = (Fraction("-0.2888"), Fraction("-1.769"), Fraction(1))
IVIT_SIG = Fraction("1.702")


def ibert_erf_scale(scale: Any, erf_shift: int = 14) -> Fraction:
    """S_erf = a·(S/k)²·2^14 (negative); the i-GELU output scale is S·S_erf/2."""
    sp = exact(scale, "scale") / IBERT_K
    out: Fraction = IBERT_ERF[0] * sp * sp * 2**erf_shift
    return out


def ibert_gelu_params(
    scale: Any, *, out_bits: int = 32, in_format: IntFormat = INT32
) -> IBertGeluParams:
    """b_int = ⌊b/S'⌋, c_int = ⌊(1/a)/S'²⌋, shift_int = ⌊1/S_erf⌋ with S' = S/1.4142."""
    sp = exact(scale, "scale") / IBERT_K
    a, b, c = IBERT_ERF
    b_int = floor_frac(b / sp)
    if b_int >= 0:
        raise SpecError(f"ibert_gelu_params: b_int = {b_int} (scale too large)")
    c_int = floor_frac((c / a) / (sp * sp))
    shift_int = floor_frac(1 / ibert_erf_scale(scale))
    return IBertGeluParams(b_int, c_int, shift_int, 14, out_bits, in_format)


def shiftgelu_params(scale: Any, *, n: int = 23, out_bits: int = 8,
                     in_format: IntFormat = INT32) -> ShiftGeluParams:
    """x0_int = ⌊-1/(1.702·S)⌋; output scale S·2^-(out_bits-1)."""
    return ShiftGeluParams(floor_frac(-1 / (exact(scale, "scale") * IVIT_SIG)), n, out_bits,
                           in_format)


def gelu_float(x: float) -> float:
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def gelu_lut_params(
    in_scale: Any,
    in_zero_point: int,
    out_scale: Any,
    out_zero_point: int,
    *,
    in_format: IntFormat = INT8,
    out_format: IntFormat = INT8,
) -> GeluLutParams:
    """Table T[q - in_min] = sat(round_half_away(gelu(S_in(q - z_in)) / S_out) + z_out)."""
    si = float(exact(in_scale, "in_scale"))
    so = exact(out_scale, "out_scale")
    table = []
    for q in range(in_format.min, in_format.max + 1):
        y = Fraction(gelu_float(si * (q - in_zero_point)))
        v = round_fraction(y / so, "half_away") + out_zero_point
        table.append(min(max(v, out_format.min), out_format.max))
    return GeluLutParams(tuple(table), in_format, out_format)


__all__ = ["gelu_float", "gelu_lut_params", "ibert_erf_scale", "ibert_gelu_params",
           "shiftgelu_params"]
