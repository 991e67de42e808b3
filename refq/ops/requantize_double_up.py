"""Double-rounding requantization with both roundings ties-toward-+∞: the x86 SIMD kernels of
ruy, which TFLite / LiteRT's optimized int8 kernels call on x86.

With a TFLite quantized multiplier M in [2^30, 2^31) and exponent ``shift`` (left shift
l = max(shift, 0), right shift r = max(-shift, 0))::

    a  = x · 2^l                        int32 (the kernel's 32-bit left shift; checked here)
    y1 = ⌊(a · M + 2^30) / 2^31⌋        the 64-bit product, nudged by 2^30 and shifted —
                                        "SaturatingRoundingDoublingHighMul" with the nudge
                                        2^30 for every sign (ties toward +∞), no saturation
    y  = ⌊(y1 + 2^(r-1)) / 2^r⌋          rounding right shift, ties toward +∞ (y1 if r = 0)

then ``out = saturate(y + zero_point)``. It differs from TFLite's reference double rounding
(``double``: both roundings ties away from zero) on negative ties and from single rounding
(``single``: one rounding of x·M·2^(shift-31)) where the first rounding moves a value across
a tie of the second: ~0.1% of random int8 FULLY_CONNECTED outputs, always by +1.

Source: google/ruy ``ruy/kernel_avx512.cc`` (Kernel8bitAvx512: ``_mm512_mul_epi32`` with
``offset_vector = 1 << 30``, ``_mm512_srav_epi64`` by 31, then ``rounding_right_shift`` with
``nudge = 1 << (exponent - 1)``; the AVX2 kernels are the same), measured bit-exact against
LiteRT 2.3.0's BUILTIN_WITHOUT_DEFAULT_DELEGATES FULLY_CONNECTED on this AVX-512 machine
(docs/backends/litert.md). ruy's portable C++ path (``apply_multiplier.cc``) rounds once
(= ``single``): which rule a build runs depends on the ISA it dispatches to.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import INT32, IntArray, as_int64, check_range
from refq.intmath.fixedpoint import check_multiplier
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare
from refq.ops.requantize import RequantParams, _channels, _offset_saturate


def double_up_scale(x: Any, multiplier: Any, shift: Any) -> IntArray:
    """x · M · 2^(shift - 31) by the two ties-up roundings of the module docstring.

    Formats: ``x`` int32 and x·2^max(shift, 0) int32 (RangeError otherwise — the kernel's
    32-bit shift would wrap); ``multiplier`` 0 or in [2^30, 2^31); ``shift`` in [-31, 30].
    Intermediates: a·M + 2^30 within ±2^62 (int64); y1 and y int32.
    """
    op = "double_up_scale"
    xa = check_range(x, INT32, "x", op)
    m = check_multiplier(multiplier)
    s = as_int64(shift, "shift")
    if s.size and (int(s.min()) < -31 or int(s.max()) > 30):
        bad = int(s.min()) if int(s.min()) < -31 else int(s.max())
        raise SpecError(f"{op}: shift {bad} outside the TFLite range [-31, 30]")
    xa, m, s = np.broadcast_arrays(xa, m, s)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    a = check_range(xa << left, INT32, "x * 2^left_shift", op)
    y1 = (a * m + np.int64(1 << 30)) >> np.int64(31)
    nudge = (np.int64(1) << right) >> np.int64(1)  # 2^(r-1), 0 for r = 0
    return np.asarray((y1 + nudge) >> right, dtype=np.int64)


def requantize_double_up(x: Any, params: RequantParams, axis: int = -1) -> IntArray:
    """The ``requantize.double_up`` variant: saturate(double_up_scale(x - in_zero_point, M,
    shift) + out_zero_point), per channel along ``axis``. Formats: x - in_zero_point int32
    (checked); output ``params.out_format`` (saturated). Accuracy: <= 1 LSB."""
    xa = as_int64(x, "x")
    xz = xa - np.int64(params.in_zero_point) if params.in_zero_point else xa
    m, s = _channels(xa, params, axis, "requantize")
    y = double_up_scale(check_range(xz, INT32, "x - in_zero_point", "requantize"), m, s)
    return _offset_saturate(y, xa, params.out_zero_point, params.out_format)


declare(Variant(
    "requantize", "double_up", requantize_double_up, RequantParams,
    title="two ties-up roundings: ruy's x86 kernels (LiteRT optimized FULLY_CONNECTED)",
    accepts="x: int32 accumulator (x - in_zero_point checked against int32)",
    produces="out_format (saturated), scale S_acc·M·2^(shift-31)",
    in_formats=lambda p: (INT32,),
    out_format=lambda p: p.out_format,
    widths=(Width("x - in_zero_point", "int32"), Width("x·2^max(shift, 0)", "int32"),
            Width("x·2^l·M + 2^30", "int63", "proven"), Width("y1", "int32", "proven"),
            Width("y + out_zero_point", "int64", "proven"),
            Width("out", "out_format", "saturated")),
    roundings=(RoundingStep("(x·2^l·M + 2^30) >> 31", "half_up"),
               RoundingStep("(y1 + 2^(r-1)) >> r", "half_up")),
    output="saturated",
    source="google/ruy ruy/kernel_avx512.cc Kernel8bitAvx512 (offset 1 << 30, srav 31, "
           "rounding_right_shift); same in the AVX2 kernels",
    accuracy="<= 1 LSB against x·M·2^(shift-31) (two half-LSB roundings)",
    binds="family",
    derive=Ref("refq.params.requantize:requant_params", {"family": "double_up"}),
    golden=(Ref("refq.golden.cases_engines:engine_cases"),),
    strategy=Ref("refq.crosscheck.strategies_engines:requantize_double_up"),
    meta={"tosa.lowering": Ref("refq.interop.tosa.requant:requantize"),
          "coverage.bins": ("operand:x - in_zero_point", "tie:x·2^l·M / 2^31", "tie:y1 / 2^r",
                            "clamp:out", "ends:shift"),
          "coverage.model": Ref("refq.golden.coverage_models:requantize_double_up"),
          "coverage.corners": Ref("refq.golden.cases_corners:requantize_tflite")},
))

__all__ = ["double_up_scale", "requantize_double_up"]
