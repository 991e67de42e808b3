"""I-BERT i-exp softmax (``ibert``) and FQ-ViT log-int softmax (``lis``).

Both start from I-BERT's i-exp (Kim et al., ICML 2021; kssteven418/I-BERT ``IntSoftmax``):
x0 = -0.6931 (≈ -ln 2), n = 30, exp(p) ≈ a(p + b/a)·p + c/a with a = 0.35815147,
b = 0.96963238, c = 1, evaluated at the integer residue r:

    d = x - max(x)                       int32 (checked)
    d = max(d, n·x0_int)                 int32
    q = ⌊d / x0_int⌋                     0..n (uint5)
    r = d - x0_int·q                     (x0_int, 0], int32
    poly = (r + b_int)·r + c_int          int<acc_bits> (checked), scale a·S²
    exp = max(poly · 2^(n-q), 0)          int<acc_bits> (checked), scale a·S²/2^n

With n = 30 ``exp`` needs ~40 bits at ViT scales: the float32 public code silently loses
bits there (FQ-ViT issue #21); refq computes it exactly and, with ``acc_bits=32``, raises
RangeError. Parameters come from :mod:`refq.params.softmax`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refq.errors import RangeError, SpecError
from refq.intmath import (
    INT32,
    IntArray,
    IntFormat,
    check_range,
    dyadic_requantize,
    ilog2,
    round_div,
    saturate,
)
from refq.ops._common import Params, int_input, need_format, need_int, signed, unsigned
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare


@dataclass(frozen=True)
class IExpParams(Params):
    """I-BERT i-exp integers: x0_int = ⌊-0.6931/S⌋ (< 0), b_int = ⌊(b/a)/S⌋,
    c_int = ⌊(c/a)/S²⌋, n, and the declared accumulator width of poly and exp."""

    x0_int: int
    b_int: int
    c_int: int
    n: int = 30
    acc_bits: int = 64
    in_format: IntFormat = INT32

    def __post_init__(self) -> None:
        need_int(self.x0_int, "x0_int", -(2**31), -1)
        need_int(self.b_int, "b_int", 0, 2**31 - 1)
        need_int(self.c_int, "c_int", 0, 2**62)
        need_int(self.n, "n", 0, 62)
        need_int(self.acc_bits, "acc_bits", 8, 64)
        need_format(self.in_format, "in_format")
        if self.n * self.x0_int < -(2**31):
            raise SpecError("IExpParams: n·x0_int does not fit int32")


def i_exp(x: IntArray, p: IExpParams, op: str) -> IntArray:
    """I-BERT i-exp of the row-max-subtracted input (module docstring)."""
    acc = signed(p.acc_bits)
    d = check_range(x - x.max(axis=-1, keepdims=True), INT32, "x - max", op)
    d = np.maximum(d, np.int64(p.n * p.x0_int))
    q = round_div(d, p.x0_int, "floor")
    r = d - np.int64(p.x0_int) * q
    poly = check_range((r + np.int64(p.b_int)) * r + np.int64(p.c_int), acc, "poly", op)
    shift = np.int64(p.n) - q
    lim = np.int64(2 ** (p.acc_bits - 1) - 1) >> shift
    if bool((poly > lim).any()):
        check_range(np.where(poly > lim, np.int64(2**62), poly), acc, "exp", op)
    out_: IntArray = np.asarray(np.maximum(poly << shift, 0), dtype=np.int64)
    return out_


@dataclass(frozen=True)
class IBertSoftmaxParams(IExpParams):
    """i-exp plus I-BERT's 16-bit QuantAct of exp (dyadic exp_multiplier / 2^exp_shift,
    half_even, saturated to int16) and the output bits (scale 2^-out_bits)."""

    exp_multiplier: int = 1
    exp_shift: int = 0
    out_bits: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        need_int(self.exp_multiplier, "exp_multiplier", 0, 2**31)
        need_int(self.exp_shift, "exp_shift", 0, 63)
        need_int(self.out_bits, "out_bits", 1, 31)


def softmax_ibert(x: Any, params: IBertSoftmaxParams) -> IntArray:
    """I-BERT integer softmax along the last axis.

    Formats: x in ``in_format`` (scale S); output uint<out_bits>, scale 2^-out_bits,
    SATURATED at 2^out_bits - 1 (I-BERT can emit 2^out_bits for a single dominant logit).
    Intermediates: i-exp (module docstring); exp16 = round_half_even(exp·m/2^c) saturated to
    [0, 2^15-1] (I-BERT QuantAct(16), scale = 1/32767 for a calibrated max of 1);
    Σexp16 int32 (checked); factor = ⌊2^32/Σ⌋ (34-bit); out = ⌊exp16·factor / 2^(32-b)⌋.
    Accuracy vs float softmax: <= 2 LSB of 2^-8 at S in [2^-8, 2^-2] (tested); the
    polynomial's relative error is ~1e-3.
    """
    op = "softmax_ibert"
    p = params
    xa = int_input(x, p.in_format, "x", op, 1)
    e = i_exp(xa, p, op)
    e16 = dyadic_requantize(e, p.exp_multiplier, p.exp_shift, "half_even")
    e16 = saturate(e16, IntFormat(16, True))
    total = check_range(e16.sum(axis=-1, keepdims=True), INT32, "sum(exp16)", op)
    if bool((total <= 0).any()):
        raise RangeError(f"{op}: a row has Σexp16 = 0 (input scale too small for exp_multiplier)")
    factor = np.int64(2**32) // total
    out = (e16 * factor) >> np.int64(32 - p.out_bits)
    return saturate(out, unsigned(p.out_bits))


@dataclass(frozen=True)
class LisParams(IExpParams):
    """FQ-ViT log-int softmax: i-exp plus the number of log2 code bits (4 → uint4)."""

    bits: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        need_int(self.bits, "bits", 1, 8)


def softmax_lis(x: Any, params: LisParams) -> IntArray:
    """FQ-ViT log-int softmax (megvii-research/FQ-ViT ``log_i_softmax``) along the last axis.

    ratio = round_half_even(Σexp / exp) (exact rational, ≥ 1; torch.round in the code);
    k = ⌊log2 ratio⌋ + [k > 0 and ratio - 2^k ≥ 2^(k-1)] (FQ-ViT ``log_round``);
    code = min(k, 2^bits - 1)
    and code = 2^bits where k ≥ 2^bits (FQ-ViT dequantizes those to exactly 0).
    Output format uint<bits+1>: 0..2^bits-1 mean 2^-code, 2^bits means 0 (a flag, so that
    the zero is not lost in a uint4 register). exp = 0 also gives the zero code (so does a
    row whose every exp is 0, where FQ-ViT's float forward computes 0/0).
    Intermediates: i-exp (acc_bits), Σexp int<acc_bits> (checked), ratio int<acc_bits>.
    Accuracy vs float: |log2 p̂ - log2 p| <= 1/2 + ~0.002 (the i-exp error) for codes < 2^bits.
    """
    op = "softmax_lis"
    p = params
    xa = int_input(x, p.in_format, "x", op, 1)
    e = i_exp(xa, p, op)
    total = check_range(e.sum(axis=-1, keepdims=True), signed(p.acc_bits), "sum(exp)", op)
    zero = e == 0
    ratio = round_div(np.broadcast_to(total, e.shape), np.where(zero, 1, e), "half_even")
    # a row whose every exp is 0 (a logits scale too coarse for i-exp) has Σexp = 0: its
    # codes are the zero code (FQ-ViT's float forward gives NaN there, 0/0)
    k = ilog2(np.maximum(ratio, 1), "floor")
    pow_k = np.int64(1) << k
    k = k + ((k > 0) & (ratio - pow_k >= (pow_k >> 1)))
    top = np.int64(2**p.bits)
    out_: IntArray = np.asarray(
        np.where(zero | (k >= top), top, k).astype(np.int64), dtype=np.int64
    )
    return out_


_IEXP_WIDTHS = (
    Width("d = x - max(x)", "int32"),
    Width("q = ⌊d / x0_int⌋", "uint5 (0..n)", "proven"),
    Width("r = d - x0_int·q", "int32", "proven"),
    Width("poly = (r + b_int)·r + c_int", "int<acc_bits>"),
    Width("exp = poly·2^(n-q)", "int<acc_bits>"),
)
_IEXP_ROUNDING = RoundingStep("q = d / x0_int", "floor")

declare(Variant(
    "softmax", "ibert", softmax_ibert, IBertSoftmaxParams,
    title="I-BERT integer softmax: i-exp polynomial, 16-bit QuantAct of exp, floor division",
    accepts="x: in_format (default int32), scale S",
    produces="uint<out_bits> (saturated at 2^out_bits - 1), scale 2^-out_bits",
    out_format=lambda p: unsigned(p.out_bits),
    widths=(*_IEXP_WIDTHS, Width("exp16", "int16 (0..2^15 - 1)", "saturated"),
            Width("sum(exp16)", "int32"), Width("factor = ⌊2^32 / sum⌋", "uint34", "proven"),
            Width("out", "uint<out_bits>", "saturated")),
    roundings=(_IEXP_ROUNDING, RoundingStep("exp16 = exp·m / 2^c", "half_even"),
               RoundingStep("factor = 2^32 / sum", "floor"),
               RoundingStep("out = exp16·factor / 2^(32-b)", "floor")),
    output="saturated",
    source="I-BERT IntSoftmax (kssteven418/I-BERT)",
    accuracy="<= 3 LSB of 2^-8 against the float softmax at S in [0.02, 0.1] (measured "
             "2.5-2.8)",
    derive=Ref("refq.params.softmax:ibert_softmax_params"),
    golden=(Ref("refq.golden.cases_kernels:softmax_rows", {"seed": 3001, "scale": "0.01"}),),
    strategy=Ref("refq.crosscheck.strategies:softmax_rows", {"scales": ("2e-3", "0.1")}),
    meta={"lower": Ref("refq.program.lower_kernels:softmax_ibert"), "lower.in_bits": 12,
          "tosa.lowering": Ref("refq.interop.tosa.softmax:ibert"),
          "coverage.bins": ("ends:x", "rows:rows", "ends:out"),
          "coverage.model": Ref("refq.golden.coverage_models:softmax_rows",
                             {"variant": "ibert"}),
          "coverage.corners": Ref("refq.golden.cases_corners:softmax")},
))
declare(Variant(
    "softmax", "lis", softmax_lis, LisParams,
    title="FQ-ViT log-int softmax: i-exp, then log2 codes of sum/exp",
    accepts="x: in_format (default int32), scale S",
    produces="uint<bits+1>: codes 0..2^bits-1 mean 2^-code, 2^bits means 0",
    out_format=lambda p: unsigned(p.bits + 1),
    widths=(*_IEXP_WIDTHS, Width("sum(exp)", "int<acc_bits>"),
            Width("ratio = sum / exp", "int<acc_bits>", "proven"),
            Width("out", "uint<bits+1>", "proven")),
    roundings=(_IEXP_ROUNDING, RoundingStep("ratio = sum / exp", "half_even"),
               RoundingStep("k = log2 ratio (FQ-ViT log_round)", "floor")),
    output="proven",
    source="FQ-ViT log_i_softmax (megvii-research/FQ-ViT)",
    accuracy="|log2 p̂ - log2 p| <= 0.75 for codes < 2^bits (tested at S in [0.02, 0.1])",
    derive=Ref("refq.params.softmax:lis_params"),
    golden=(Ref("refq.golden.cases_kernels:softmax_rows", {"seed": 3005, "scale": "0.01"}),),
    strategy=Ref("refq.crosscheck.strategies:softmax_rows", {"scales": ("2e-3", "0.1")}),
    meta={"lower": Ref("refq.program.lower_kernels:softmax_lis"),
          "tosa.lowering": Ref("refq.interop.tosa.softmax_lis:lis"),
          "coverage.bins": ("ends:x", "rows:rows", "ends:out"),
          "coverage.model": Ref("refq.golden.coverage_models:softmax_rows",
                             {"variant": "lis"}),
          "coverage.corners": Ref("refq.golden.cases_corners:softmax")},
))

__all__ = ["IBertSoftmaxParams", "IExpParams", "LisParams", "i_exp", "softmax_ibert", "softmax_lis"]
