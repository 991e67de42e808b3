"""Integer GELU variants: ``ibert`` (i-GELU), ``shiftgelu`` (I-ViT), ``lut`` (TFLite-style table).

``ibert`` (kssteven418/I-BERT ``IntGELU``): erf(x/√2) ≈ sgn·[a(min(|x|, -b) + b)² + 1],
a = -0.2888, b = -1.769, k = 1.4142; at S' = S/k: b_int = ⌊b/S'⌋ (< 0),
c_int = ⌊(1/a)/S'²⌋ (< 0), shift_int = ⌊1/S_erf⌋ with S_erf = a·S'²·2^14 (< 0):

    y = sgn(q)·((min(|q|, -b_int) + b_int)² + c_int)   int32 (checked), scale a·S'²
    y = ⌊y / 2^14⌋                                    int32, scale S_erf
    out = q·(y + shift_int)                            int<out_bits> (checked), scale S·S_erf/2

``shiftgelu`` (zkkli/I-ViT ``IntGELU``): x·σ(1.702x) with σ(z) = e^(z-m)/(e^(z-m) + e^(-m)),
m = row max, both exps by the I-ViT shift-exp at scale 1.702·S (x0_int = ⌊-1/(1.702 S)⌋,
n = 23); exps saturate at 2^31 - 1 (the code's clamp_max on their sum), f = ⌊(2^31-1)/Σ⌋,
σ = ⌊e1·f / 2^(32-b)⌋ (b = 8, scale 2^-(b-1)), out = q·σ, scale S·2^-(b-1).

``lut``: out = T[x - in_min] for an int8/uint8 input; T pinned in the params (computed
once from float GELU by :func:`refq.params.gelu.gelu_lut_params`, stored as integers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from refq.errors import SpecError
from refq.intmath import INT8, INT32, IntArray, IntFormat, check_range, round_div
from refq.ops._common import (
    Params,
    int_input,
    need_format,
    need_int,
    need_ints,
    need_shift_exp,
    signed,
)
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare, find, names

_I32_MAX = 2**31 - 1


@dataclass(frozen=True)
class IBertGeluParams(Params):
    b_int: int
    c_int: int
    shift_int: int
    erf_shift: int = 14
    out_bits: int = 32
    in_format: IntFormat = INT32

    def __post_init__(self) -> None:
        need_int(self.b_int, "b_int", -(2**15), -1)
        need_int(self.c_int, "c_int", -(2**31), -1)
        need_int(self.shift_int, "shift_int", -(2**31), 0)
        need_int(self.erf_shift, "erf_shift", 0, 30)
        need_int(self.out_bits, "out_bits", 8, 64)
        need_format(self.in_format, "in_format")


def gelu_ibert(x: Any, params: IBertGeluParams) -> IntArray:
    """I-BERT i-GELU (module docstring). Rounding: floor (⌊y/2^14⌋). Output scale
    S·S_erf/2 (positive). Accuracy vs float GELU: <= 0.02·max(|x|,1)·... the erf polynomial's
    max error is 1.8e-2 (I-BERT Table 1); bound used in tests: |err| <= 0.025·|x| + 2 S."""
    op = "gelu_ibert"
    p = params
    q = int_input(x, p.in_format, "x", op)
    a = np.minimum(np.abs(q), np.int64(-p.b_int))
    y = check_range(np.sign(q) * ((a + p.b_int) ** 2 + np.int64(p.c_int)), INT32, "erf_poly", op)
    y = y >> np.int64(p.erf_shift)
    return check_range(q * (y + np.int64(p.shift_int)), signed(p.out_bits), "out", op)


@dataclass(frozen=True)
class ShiftGeluParams(Params):
    x0_int: int
    n: int = 23
    out_bits: int = 8
    in_format: IntFormat = INT32

    def __post_init__(self) -> None:
        need_shift_exp(self)


def _shift_exp_sat(d: IntArray, x0: int, n: int) -> IntArray:
    """I-ViT shift-exp, any sign of d, saturated to [0, 2^31 - 1] (int64 intermediates)."""
    d = d + (d >> 1) - (d >> 4)
    d = np.maximum(d, np.int64(n * x0))
    q = round_div(d, x0, "floor")
    r = d - np.int64(x0) * q
    sh = np.int64(n) - q
    base = r - np.int64(2 * x0)  # in (-x0, -2 x0], positive
    big = sh >= 32
    e = (base << np.where(big, 0, sh)) >> 1
    out_: IntArray = np.asarray(
        np.where(big, np.int64(_I32_MAX), np.minimum(e, np.int64(_I32_MAX))), dtype=np.int64
    )
    return out_


def gelu_shiftgelu(x: Any, params: ShiftGeluParams) -> IntArray:
    """I-ViT ShiftGELU along the last axis (row max). Rounding: floor. Output int32
    (checked), scale S·2^-(b-1). Accuracy vs float GELU: the sigmoid(1.702x) approximation
    has <= 0.02 absolute error and the shift-exp ~6%; bound used: 0.05·|x| + 2 S."""
    op = "gelu_shiftgelu"
    p = params
    q = int_input(x, p.in_format, "x", op, 1)
    m = q.max(axis=-1, keepdims=True)
    d = check_range(q - m, INT32, "x - max", op)
    e1 = _shift_exp_sat(d, p.x0_int, p.n)
    e2 = _shift_exp_sat(-m, p.x0_int, p.n)
    total = np.minimum(e1 + e2, np.int64(_I32_MAX))
    factor = np.int64(_I32_MAX) // np.maximum(total, 1)
    sig = (e1 * factor) >> np.int64(32 - p.out_bits)
    return check_range(q * sig, INT32, "out", op)


@dataclass(frozen=True)
class GeluLutParams(Params):
    table: tuple[int, ...]
    in_format: IntFormat = INT8
    out_format: IntFormat = INT8

    def __post_init__(self) -> None:
        fi = need_format(self.in_format, "in_format")
        fo = need_format(self.out_format, "out_format")
        if fi.bits > 16:
            raise SpecError("GeluLutParams.in_format: at most 16 bits")
        t = need_ints(self.table, "table", fo.min, fo.max)
        if len(t) != 1 << fi.bits:
            raise SpecError(f"GeluLutParams.table: {len(t)} entries, expected {1 << fi.bits}")
        object.__setattr__(self, "table", t)


def gelu_lut(x: Any, params: GeluLutParams) -> IntArray:
    """Table GELU: out = table[x - in_format.min]. Exact lookup; accuracy is the table's:
    <= 1/2 output LSB of the float GELU at the table's scales (+ input quantization)."""
    p = params
    q = int_input(x, p.in_format, "x", "gelu_lut")
    out_: IntArray = np.asarray(
        np.asarray(p.table, dtype=np.int64)[q - np.int64(p.in_format.min)], dtype=np.int64
    )
    return out_


GeluVariant = Literal["ibert", "shiftgelu", "lut"]
"""The built-in GELU variant names, for type checkers (:data:`GELU_VARIANTS` is the live
list, derived from the registry)."""
GeluParams = IBertGeluParams | ShiftGeluParams | GeluLutParams


def gelu(x: Any, params: Any, variant: str = "lut") -> IntArray:
    """Integer GELU by ``variant`` (module docstring); ``params`` must be its type."""
    return find("gelu", variant)(x, params)


declare(Variant(
    "gelu", "ibert", gelu_ibert, IBertGeluParams,
    title="I-BERT i-GELU: second-order erf polynomial",
    accepts="x: in_format (default int32), scale S (designed for S ~ 1e-4..1e-3)",
    produces="int<out_bits>, scale S·S_erf/2 (S_erf = a·(S/k)²·2^14 < 0)",
    out_format=lambda p: signed(p.out_bits),
    widths=(Width("erf_poly = sgn(q)·((min(|q|, -b_int) + b_int)² + c_int)", "int32"),
            Width("y = ⌊erf_poly / 2^14⌋", "int32", "proven"),
            Width("out = q·(y + shift_int)", "int<out_bits>")),
    roundings=(RoundingStep("y = erf_poly / 2^erf_shift", "floor"),),
    output="checked",
    source="I-BERT IntGELU (kssteven418/I-BERT)",
    accuracy="|err| <= 0.025·max(|x|, 1) at S in [3e-4, 1e-3] (tested); at 8-bit ViT scales "
             "(S ~ 0.05) the 2^14 shift leaves too few erf bits",
    derive=Ref("refq.params.gelu:ibert_gelu_params"),
    golden=(Ref("refq.golden.cases_kernels:gelu_ramp",
                {"seed": 3102, "scale": "0.0005", "ramp": (-16000, 16001, 500), "sigma": 4000}),),
    strategy=Ref("refq.crosscheck.strategies:gelu_scaled", {"scales": ("3e-4", "1e-3")}),
    meta={"lower": Ref("refq.program.lower_kernels:gelu_ibert"),
          "tosa.lowering": Ref("refq.interop.tosa.gelu:ibert"),
          "coverage.bins": ("operand:x", "clamp:|q| for min(|q|, -b_int)", "top:out"),
          "coverage.model": Ref("refq.golden.coverage_models:gelu_ibert"),
          "coverage.unreachable": {"|q| for min(|q|, -b_int): below": "|q| >= 0"},
          "coverage.corners": Ref("refq.golden.cases_corners:gelu")},
))
declare(Variant(
    "gelu", "shiftgelu", gelu_shiftgelu, ShiftGeluParams,
    title="I-ViT ShiftGELU: x·sigmoid(1.702x) with shift-exps",
    accepts="x: in_format (default int32), scale S; rows along the last axis",
    produces="int32, scale S·2^-(out_bits-1)",
    out_format=lambda p: INT32,
    widths=(Width("x - max", "int32"), Width("e1, e2 (shift-exps)", "int32", "saturated"),
            Width("e1 + e2", "int32", "saturated"), Width("f = ⌊(2^31 - 1) / Σ⌋", "int32",
                                                          "proven"),
            Width("σ = ⌊e1·f / 2^(32-b)⌋", "int62", "proven"), Width("out = q·σ", "int32")),
    roundings=(RoundingStep("shift-exp ⌊d/2⌋, ⌊d/16⌋, ⌊d/x0_int⌋", "floor"),
               RoundingStep("f = (2^31 - 1) / Σ", "floor"),
               RoundingStep("σ = e1·f / 2^(32-b)", "floor")),
    output="checked",
    source="I-ViT IntGELU (zkkli/I-ViT)",
    accuracy="|err| <= 0.2·|x| + 0.1 at S in [0.01, 0.08] (the coarse factor ⌊(2^31-1)/Σ⌋ "
             "costs up to ~20% relative)",
    derive=Ref("refq.params.gelu:shiftgelu_params"),
    golden=(Ref("refq.golden.cases_kernels:gelu_ramp",
                {"seed": 3101, "scale": "0.05", "ramp": (-200, 201, 7), "sigma": 40}),),
    strategy=Ref("refq.crosscheck.strategies:gelu_scaled", {"scales": ("0.01", "0.1")}),
    meta={"lower": Ref("refq.program.lower_kernels:gelu_shiftgelu"),
          "tosa.lowering": Ref("refq.interop.tosa.gelu:shiftgelu"),
          "coverage.bins": ("operand:x", "clamp:d + ⌊d/2⌋ - ⌊d/16⌋ at n·x0_int", "rows:rows",
                            "top:out"),
          "coverage.model": Ref("refq.golden.coverage_models:gelu_shiftgelu"),
          "coverage.unreachable": {
              "d + ⌊d/2⌋ - ⌊d/16⌋ at n·x0_int: above":
                  "d = x - max(x) <= 0: only the lower clamp exists"},
          "coverage.corners": Ref("refq.golden.cases_corners:gelu")},
))
declare(Variant(
    "gelu", "lut", gelu_lut, GeluLutParams,
    title="GELU by a table of every input code (TFLite-style LUT)",
    accepts="x: in_format (at most 16 bits; default int8)",
    produces="out_format (the table's), at the table's output scale",
    out_format=lambda p: p.out_format,
    widths=(Width("index x - in_min", "uint<in_bits>", "proven"),
            Width("out = T[x - in_min]", "out_format", "proven")),
    roundings=(),
    output="proven",
    source="refq / TFLite LUT GELU (table built once in float64, stored as integers)",
    accuracy="<= 1/2 output LSB of the float GELU at the table's scales (+ input "
             "quantization)",
    golden=(Ref("refq.golden.cases_kernels:gelu_lut_exhaustive", {"seed": 3100}),),
    strategy=Ref("refq.crosscheck.strategies:gelu_lut"),
    meta={"lower": Ref("refq.program.lower_kernels:gelu_lut"),
          "tosa.lowering": Ref("refq.interop.tosa.gelu:lut"),
          "coverage.bins": ("operand:x", "ends:T[x - in_min]"),
          "coverage.model": Ref("refq.golden.coverage_models:gelu_lut"),
          "coverage.corners": Ref("refq.golden.cases_corners:gelu")},
))


def __getattr__(name: str) -> tuple[str, ...]:
    if name == "GELU_VARIANTS":  # derived from the registry on every access
        return names("gelu")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GELU_VARIANTS",  # noqa: F822 (module __getattr__: derived from the registry)
    "GeluLutParams",
    "GeluParams",
    "GeluVariant",
    "IBertGeluParams",
    "ShiftGeluParams",
    "gelu",
    "gelu_ibert",
    "gelu_lut",
    "gelu_shiftgelu",
]
