"""refq.intmath — the integer ALU: formats, named rounding, gemmlowp/TFLite fixed point,
dyadic requantization, exact GEMM, integer square root and logarithms.

Everything here operates on int64 NumPy arrays holding values of a declared
:class:`IntFormat`, never on floats (the exact-GEMM fast path and the real→integer
parameter conversions in ``from_real`` are the documented exceptions). Imports nothing of
refq but :mod:`refq.errors`.
"""

from refq.intmath.arrays import IntArray, as_int64
from refq.intmath.dyadic import dyadic_requantize, dyadic_requantize_saturate
from refq.intmath.fixedpoint import (
    SCHEMES,
    Scheme,
    multiply_by_quantized_multiplier,
    one_over_one_plus_x_for_x_in_0_1,
    rounding_divide_by_pot,
    rounding_half_sum,
    saturating_rounding_doubling_high_mul,
    saturating_rounding_multiply_by_pot,
)
from refq.intmath.formats import (
    INT4,
    INT8,
    INT16,
    INT32,
    INT64,
    UINT4,
    UINT8,
    IntFormat,
    check_bounds,
    check_range,
    saturate,
    wrap,
)
from refq.intmath.from_real import dyadic_from_real, quantize_multiplier
from refq.intmath.gemm import exact_matmul
from refq.intmath.isqrt import ilog2, isqrt
from refq.intmath.rounding import ROUNDINGS, Rounding, round_div, round_div_shifted, round_shift

__all__ = [
    "INT4",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "ROUNDINGS",
    "SCHEMES",
    "UINT4",
    "UINT8",
    "IntArray",
    "IntFormat",
    "Rounding",
    "Scheme",
    "as_int64",
    "check_bounds",
    "check_range",
    "dyadic_from_real",
    "dyadic_requantize",
    "dyadic_requantize_saturate",
    "exact_matmul",
    "ilog2",
    "isqrt",
    "multiply_by_quantized_multiplier",
    "one_over_one_plus_x_for_x_in_0_1",
    "quantize_multiplier",
    "round_div",
    "round_div_shifted",
    "round_shift",
    "rounding_divide_by_pot",
    "rounding_half_sum",
    "saturate",
    "saturating_rounding_doubling_high_mul",
    "saturating_rounding_multiply_by_pot",
    "wrap",
]
