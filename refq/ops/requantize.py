"""Requantization: an int32/int64 accumulator → a narrow output format, by named families.

Families (DESIGN.md numeric contract 3; METHODS.md §3):

``double``  TFLite default build: MultiplyByQuantizedMultiplier with two roundings
            (SaturatingRoundingDoublingHighMul, ties toward +inf, then
            RoundingDivideByPOT, ties away from zero). ``multiplier`` in [2^30, 2^31)
            (or 0), ``shift`` in [-31, 30] is the exponent (positive = left shift).
            Input must be int32.
``single``  TFLITE_SINGLE_ROUNDING: (x·M + 2^(30-shift)) >> (31-shift), ties toward +∞.
``dyadic``  I-ViT / HAWQ: round(x·b / 2^c) with a named rounding; ``multiplier`` = b >= 0,
            ``shift`` = c in 0..63 (a RIGHT shift). x·b must fit int64 (RangeError).

The engine families, each in its own module (measured against the engines that run them,
docs/backends/torch-native.md and litert.md):

``double_up`` ruy's x86 kernels (TFLite / LiteRT's optimized FULLY_CONNECTED on x86):
            ⌊(x·2^l·M + 2^30) / 2^31⌋, then a ties-up right shift by r; TFLite multiplier and
            shift (:mod:`refq.ops.requantize_double_up`).
``fp32``    a binary32 multiplier m·2^-c (PyTorch's quantized CPU engines, XNNPACK): x and the
            product rounded to binary32, then to an integer, all ties to even; ``multiplier``
            = m in [0, 2^24), ``shift`` = c in 0..63 (:mod:`refq.ops.requantize_fp32`).
``fp32_zp`` ``fp32`` with the output zero point added in binary32 before the rounding to an
            integer (oneDNN; PyTorch's quantize_per_tensor): ties go to the even value of
            x·m/2^c + zp (:mod:`refq.ops.requantize_fp32`).
``fp64``    a binary64 scale m·2^-c with round half away (TFLite's reference
            FULLY_CONNECTED: ``round(double(acc)·scale)``); ``multiplier`` = m in [0, 2^53),
            ``shift`` = c in 0..126 (:mod:`refq.ops.requantize_fp64`).

Then ``out = saturate(y + out_zero_point, out_format)`` (saturation is the spec here).
The input zero point is subtracted first (``x - in_zero_point``, checked against int32 for
the TFLite families). Per-channel parameters (tuples of length C) apply along ``axis``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

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
from refq.ops.registry import Ref, RoundingStep, Variant, Width, bound, declare, dispatch, names


@dataclass(frozen=True)
class RequantParams(Params):
    """Integer parameters of :func:`requantize` (see the module docstring). ``family`` names
    the variant (``requantize.<family>``); ``rounding`` is the runtime rounding of the
    ``dyadic`` family (default half_even) and must be absent (None) for the TFLite
    families, whose roundings the family fixes."""

    OMIT_NONE: ClassVar[tuple[str, ...]] = ("rounding",)

    family: str = "double"
    multiplier: tuple[int, ...] = (1 << 30,)
    shift: tuple[int, ...] = (0,)
    rounding: str | None = None
    in_zero_point: int = 0
    out_zero_point: int = 0
    out_format: IntFormat = INT8

    def __post_init__(self) -> None:
        need_choice(self.family, "RequantParams.family", _families())
        m = need_ints(self.multiplier, "RequantParams.multiplier", 0, 2**62)
        s = need_ints(self.shift, "RequantParams.shift", -31, FP64_MAX_SHIFT)
        object.__setattr__(self, "multiplier", m)
        object.__setattr__(self, "shift", s)
        need_int(self.in_zero_point, "RequantParams.in_zero_point")
        fmt = need_format(self.out_format, "RequantParams.out_format")
        need_int(self.out_zero_point, "RequantParams.out_zero_point", fmt.min, fmt.max)
        if self.family in TFLITE_FAMILIES:
            if self.rounding is not None:
                raise SpecError(
                    f"RequantParams: family {self.family!r} takes no rounding (TFLite fixes its "
                    f"roundings: SRDHM and RoundingDivideByPOT, or one nudge), got "
                    f"{self.rounding!r}"
                )
            for v in m:
                if v != 0 and not (1 << 30) <= v < (1 << 31):
                    raise SpecError(f"RequantParams.multiplier {v}: not 0 nor in [2^30, 2^31)")
            if min(s) < -31 or max(s) > 30:
                raise SpecError("RequantParams.shift: TFLite shifts lie in [-31, 30]")
        elif self.family == "dyadic":
            r = "half_even" if self.rounding is None else self.rounding
            object.__setattr__(self, "rounding", check_rounding(r, "RequantParams.rounding"))
            if min(s) < 0 or max(s) > 63:
                raise SpecError("RequantParams.shift: dyadic right shift c must be in 0..63")
        elif self.family in IEEE_FAMILIES:
            bits, top = IEEE_FAMILIES[self.family]
            if self.rounding is not None:
                raise SpecError(f"RequantParams: family {self.family!r} takes no rounding "
                                f"(its roundings are fixed), got {self.rounding!r}")
            if max(m) >= 1 << bits:
                raise SpecError(f"RequantParams.multiplier: a {self.family} significand is "
                                f"< 2^{bits}, got {max(m)}")
            if min(s) < 0 or max(s) > top:
                raise SpecError(f"RequantParams.shift: {self.family} right shift c must be "
                                f"in 0..{top}")


TFLITE_FAMILIES = ("double", "single", "double_up")
"""The requantizers with a TFLite Q0.31 multiplier and shift (MultiplyByQuantizedMultiplier
and ruy's double_up): ``rounding`` is the family's."""
FP64_MAX_SHIFT = 126
IEEE_FAMILIES: dict[str, tuple[int, int]] = {
    "fp32": (24, 63), "fp32_zp": (24, 63), "fp64": (53, FP64_MAX_SHIFT),
}
"""family → (significand bits, largest right shift) of the IEEE-754 binary multiplier families
(:mod:`refq.ops.requantize_fp32`, :mod:`refq.ops.requantize_fp64`)."""


def _families() -> tuple[str, ...]:
    return bound("requantize", RequantParams, "family")


def _channels(xa: IntArray, params: RequantParams, axis: int, op: str) -> tuple[IntArray, IntArray]:
    """multiplier and shift as int64 arrays broadcasting along ``axis`` of ``xa``."""
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
    return m, s


def requantize_tflite(x: Any, params: RequantParams, axis: int = -1) -> IntArray:
    """TFLite MultiplyByQuantizedMultiplier (``double``: SRDHM then RoundingDivideByPOT,
    ``single``: one nudge and shift), then + out_zero_point and saturation.

    Formats: x - in_zero_point int32 (checked); output ``params.out_format`` (saturated).
    Accuracy: <= 1/2 LSB (single) or 1 LSB (double) against x·M·2^(shift-31)."""
    op = "requantize"
    xa = as_int64(x, "x")
    xz = xa - np.int64(params.in_zero_point) if params.in_zero_point else xa
    m, s = _channels(xa, params, axis, op)
    xz = check_range(xz, INT32, "x - in_zero_point", op)
    y = multiply_by_quantized_multiplier(
        xz, m, s, "double" if params.family == "double" else "single"
    )
    return _offset_saturate(y, xa, params.out_zero_point, params.out_format)


def requantize_dyadic(x: Any, params: RequantParams, axis: int = -1) -> IntArray:
    """I-ViT / HAWQ dyadic requantization: saturate(round(x·b / 2^c) + zp) with the named
    ``params.rounding``; x - in_zero_point any int64, x·b must fit int64 (RangeError).
    Accuracy: <= 1/2 LSB against x·b/2^c."""
    op = "requantize"
    xa = as_int64(x, "x")
    xz = xa - np.int64(params.in_zero_point) if params.in_zero_point else xa
    m, s = _channels(xa, params, axis, op)
    rounding: Rounding = check_rounding(params.rounding)
    return dyadic_requantize_saturate(xz, m, s, rounding, params.out_zero_point, params.out_format)


def requantize(x: Any, params: RequantParams, axis: int = -1) -> IntArray:
    """Requantize an integer accumulator ``x`` with ``params`` (module docstring): the
    variant ``requantize.<params.family>`` of the registry.

    Formats: ``x`` int32 for ``double``/``single`` (checked after subtracting the input zero
    point), any int64 for ``dyadic``; output ``params.out_format`` (saturated).
    Intermediates: x - zp (int32 / int64, checked), the scaled value (int32 for TFLite, the
    exact product x·b in int64 for dyadic), y + out_zero_point (int64) before saturation.
    Accuracy: |y - x·real| <= 1/2 LSB (+1 LSB for ``double``'s two roundings worst case)
    where real = M·2^(shift-31) (TFLite) or b/2^c (dyadic).
    """
    return dispatch("requantize", params)(x, params, axis=axis)


def _offset_saturate(y: IntArray, x: IntArray, zero_point: int, fmt: IntFormat) -> IntArray:
    """saturate(y + zero_point, fmt), in place on ``y`` unless it may share memory with the
    caller's ``x`` (refq.intmath.formats.saturate_offset: no int64 wrap of the sum)."""
    in_place = y.shape == x.shape and not np.may_share_memory(y, x)
    return saturate_offset(y, zero_point, fmt, in_place=in_place)


def _out(p: RequantParams) -> IntFormat:
    return p.out_format


def _acc(p: RequantParams) -> tuple[IntFormat]:
    return (INT32,)


_GOLDEN = "refq.golden.cases_requantize"


def _declare_tflite(family: str, title: str, widths: tuple[Width, ...],
                    roundings: tuple[RoundingStep, ...], source: str, accuracy: str,
                    bins: tuple[str, ...]) -> None:
    """requantize.double / requantize.single: one function (:func:`requantize_tflite`),
    TFLite's parameters (M, shift) and cases; ``bins``: the coverage bins."""
    declare(Variant(
        "requantize", family, requantize_tflite, RequantParams,
        title=title,
        accepts="x: int32 accumulator (x - in_zero_point checked against int32)",
        produces="out_format (saturated), scale S_acc·M·2^(shift-31)",
        in_formats=_acc,
        out_format=_out,
        widths=widths,
        roundings=roundings,
        output="saturated",
        source=source,
        accuracy=accuracy,
        binds="family",
        derive=Ref("refq.params.requantize:requant_params", {"family": family}),
        golden=(Ref(f"{_GOLDEN}:tflite_cases"),),
        strategy=Ref("refq.crosscheck.strategies:requantize_tflite"),
        meta={"lower": Ref("refq.program.lower_kernels:requantize_tflite"),
              "lower.min_scale": Ref("refq.program.lower_kernels:no_left_shift"),
              "lower.src_bits": 32,
              "tosa.lowering": Ref("refq.interop.tosa.requant:requantize"),
              "coverage.bins": bins,
              "coverage.model": Ref(f"refq.golden.coverage_models:requantize_{family}"),
              "coverage.corners": Ref("refq.golden.cases_corners:requantize_tflite")},
    ))


_declare_tflite(
    "double", "TFLite MultiplyByQuantizedMultiplier, default build (two roundings)",
    (Width("x - in_zero_point", "int32"), Width("x·2^max(shift, 0)", "int32"),
     Width("SRDHM(x·2^max(shift, 0), M)", "int32", "saturated"),
     Width("y + out_zero_point", "int64", "proven"),
     Width("out", "out_format", "saturated")),
    (RoundingStep("SaturatingRoundingDoublingHighMul(x, M)", "half_up"),
     RoundingStep("RoundingDivideByPOT(·, -shift)", "half_away")),
    "TFLite kernels/internal/common.h MultiplyByQuantizedMultiplier; gemmlowp fixedpoint.h",
    "<= 1 LSB against x·M·2^(shift-31) (two half-LSB roundings)",
    ("operand:x - in_zero_point", "tie:SRDHM: x·2^left·M / 2^31", "tie:RDBPOT: high / 2^right",
     "clamp:out", "ends:shift"),
)
_declare_tflite(
    "single", "TFLite MultiplyByQuantizedMultiplier, TFLITE_SINGLE_ROUNDING (one rounding)",
    (Width("x - in_zero_point", "int32"), Width("x·M + 2^(30-shift)", "int63", "proven"),
     Width("(x·M + 2^(30-shift)) >> (31-shift)", "int32"),
     Width("y + out_zero_point", "int64", "proven"),
     Width("out", "out_format", "saturated")),
    (RoundingStep("(x·M + 2^(30-shift)) >> (31-shift)", "half_up"),),
    "TFLite kernels/internal/common.h MultiplyByQuantizedMultiplier (TFLITE_SINGLE_ROUNDING)",
    "<= 1/2 LSB against x·M·2^(shift-31)",
    ("operand:x - in_zero_point", "tie:x·M / 2^(31-shift)", "clamp:out", "ends:shift"),
)
declare(Variant(
    "requantize", "dyadic", requantize_dyadic, RequantParams,
    title="dyadic b/2^c requantization with a named rounding (I-ViT, HAWQ)",
    accepts="x: any int64 accumulator (x·b must fit int64)",
    produces="out_format (saturated), scale S_acc·b/2^c",
    in_formats=_acc,
    out_format=_out,
    widths=(Width("x - in_zero_point", "int64"), Width("x·b", "int64"),
            Width("y + out_zero_point", "int64", "proven"),
            Width("out", "out_format", "saturated")),
    roundings=(RoundingStep("x·b / 2^c", "params.rounding"),),
    output="saturated",
    source="I-ViT (zkkli/I-ViT) / HAWQ batch_frexp requantization",
    accuracy="<= 1/2 LSB against x·b/2^c (ties by params.rounding)",
    binds="family",
    derive=Ref("refq.params.requantize:requant_params", {"family": "dyadic"}),
    golden=(Ref(f"{_GOLDEN}:dyadic_cases"),),
    strategy=Ref("refq.crosscheck.strategies:requantize_dyadic"),
    meta={"lower": Ref("refq.program.lower_kernels:requantize_dyadic"),
          "tosa.lowering": Ref("refq.interop.tosa.requant:requantize"),
          "coverage.bins": ("operand:x - in_zero_point", "tie:x·b / 2^c", "top:x·b", "clamp:out",
                            "ends:c"),
          "coverage.model": Ref("refq.golden.coverage_models:requantize_dyadic"),
          "coverage.corners": Ref("refq.golden.cases_corners:requantize_dyadic")},
))


def __getattr__(name: str) -> tuple[str, ...]:
    if name == "FAMILIES":  # derived: the requantize variants that take RequantParams
        return _families()
    if name == "REQUANTIZE_VARIANTS":
        return names("requantize")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FAMILIES",  # noqa: F822 (module __getattr__: derived from the registry)
    "IEEE_FAMILIES",
    "REQUANTIZE_VARIANTS",  # noqa: F822
    "TFLITE_FAMILIES",
    "RequantParams",
    "requantize",
    "requantize_dyadic",
    "requantize_tflite",
]
