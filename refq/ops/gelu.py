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
from refq.ops._common import Params, int_input, need_format, need_int, need_ints, signed

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
        need_int(self.x0_int, "x0_int", -(2**31), -1)
        need_int(self.n, "n", 0, 30)
        need_int(self.out_bits, "out_bits", 2, 31)
        need_format(self.in_format, "in_format")
        if self.n * self.x0_int < -(2**31):
            raise SpecError("ShiftGeluParams: n·x0_int does not fit int32")


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
GELU_VARIANTS: tuple[str, ...] = ("ibert", "shiftgelu", "lut")
GeluParams = IBertGeluParams | ShiftGeluParams | GeluLutParams
_TABLE: dict[str, tuple[type, Any]] = {
    "ibert": (IBertGeluParams, gelu_ibert),
    "shiftgelu": (ShiftGeluParams, gelu_shiftgelu),
    "lut": (GeluLutParams, gelu_lut),
}


def gelu(x: Any, params: GeluParams, variant: GeluVariant = "lut") -> IntArray:
    """Integer GELU by ``variant`` (module docstring); ``params`` must match it."""
    if variant not in _TABLE:
        raise SpecError(f"gelu: unknown variant {variant!r}; expected one of {GELU_VARIANTS}")
    ptype, fn = _TABLE[variant]
    if type(params) is not ptype:
        raise SpecError(
            f"gelu: variant {variant!r} needs {ptype.__name__}, got {type(params).__name__}"
        )
    out: IntArray = fn(x, params)
    return out


__all__ = [
    "GELU_VARIANTS",
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
